"""QuickBooks sync queue consumer: every outbound QuickBooks call (SQS, partial batch failures)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from fieldbill.observability import capture_lambda_handler, logger, metrics
from fieldbill.workflows.qbo_sync import consumer


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return consumer.handle_event(event, context)
