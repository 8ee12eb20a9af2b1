"""Billing run step: sync (state in, state out: ids and flags only)."""

from fieldbill.observability import logger
from fieldbill.workflows.billing import run as billing_run


@logger.inject_lambda_context
def lambda_handler(event, context):
    return billing_run.sync_step(event)
