"""QuickBooks webhooks: check intuit-signature on the raw body, queue the delivery, answer at once."""

from aws_lambda_powertools.logging import correlation_paths

from fieldbill.observability import logger, metrics
from fieldbill.workflows.inbound.webhooks import receive


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event, context):
    return receive(event)
