"""Applies QuickBooks changes (webhook deliveries, scheduled and manual pulls) to local records."""

from fieldbill.observability import capture_lambda_handler, logger, metrics
from fieldbill.workflows.inbound.consumer import consume


@logger.inject_lambda_context
@metrics.log_metrics
@capture_lambda_handler
def lambda_handler(event, context):
    return consume(event, context)
