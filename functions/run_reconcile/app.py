"""Scheduled: end every billing run whose lock expired (its execution timed out) and free the tenant."""

from fieldbill.observability import logger
from fieldbill.workflows.billing import run as billing_run


@logger.inject_lambda_context
def lambda_handler(event, context):
    return {"reconciled": billing_run.reconcile_expired()}
