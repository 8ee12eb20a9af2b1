"""Applies QuickBooks changes (webhook deliveries, scheduled and manual pulls) to local records."""

from fieldbill.observability import logger, metrics, tracer
from fieldbill.workflows.inbound.consumer import consume


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event, context):
    return consume(event, context)
