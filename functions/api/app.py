"""HTTP API: every resource and command for web clients (routes in fieldbill.api)."""

from aws_lambda_powertools.logging import correlation_paths

from fieldbill.api.app import app
from fieldbill.observability import capture_lambda_handler, logger, metrics


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@capture_lambda_handler
def lambda_handler(event, context):
    return app.resolve(event, context)
