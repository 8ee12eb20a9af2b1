"""Asynchronous commands started over the API (compile, generate), one operation per message."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from fieldbill.observability import capture_lambda_handler, logger, metrics
from fieldbill.workflows.billing.jobs import handle_record

processor = BatchProcessor(event_type=EventType.SQS)


@logger.inject_lambda_context
@metrics.log_metrics
@capture_lambda_handler
def lambda_handler(event, context):
    return process_partial_response(
        event=event, record_handler=handle_record, processor=processor, context=context
    )
