"""Records what SES reports about sent invoice emails (delivery, bounce, complaint) from MailEventsQueue."""

from fieldbill.observability import capture_lambda_handler, logger, metrics
from fieldbill.workflows.documents.events import consume


@logger.inject_lambda_context
@metrics.log_metrics
@capture_lambda_handler
def lambda_handler(event, context):
    return consume(event, context)
