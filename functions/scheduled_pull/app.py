"""EventBridge schedules: queue one pull per connected company for the scheduled data type."""

from fieldbill.observability import logger, metrics
from fieldbill.workflows.inbound.schedules import schedule_pulls


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event, context):
    return schedule_pulls(event["data_type"])
