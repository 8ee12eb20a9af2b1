"""Records what SES reports about sent invoice emails (delivery, bounce, complaint) from MailEventsQueue."""

from fieldbill.observability import logger, metrics, tracer
from fieldbill.workflows.documents.events import consume


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event, context):
    return consume(event, context)
