"""The environment's shape: every setting, its variable and its bounds (read through fieldbill.settings)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    table_name: str = Field(alias="TABLE_NAME")
    qbo_sync_queue_url: str = Field(default="", alias="QBO_SYNC_QUEUE_URL")
    jobs_queue_url: str = Field(default="", alias="JOBS_QUEUE_URL")
    inbound_queue_url: str = Field(default="", alias="INBOUND_QUEUE_URL")
    billing_run_state_machine_arn: str = Field(default="", alias="BILLING_RUN_STATE_MACHINE_ARN")
    # A billing run checks its sync progress every poll, at most max_checks times (each check is
    # ~9 Step Functions history events: the bound keeps a run far below the 25,000-event limit).
    billing_run_poll_seconds: int = Field(default=10, ge=1, alias="BILLING_RUN_POLL_SECONDS")
    billing_run_reconnect_poll_seconds: int = Field(
        default=60, ge=1, alias="BILLING_RUN_RECONNECT_POLL_SECONDS"
    )
    billing_run_max_checks: int = Field(default=1500, ge=1, le=2000, alias="BILLING_RUN_MAX_CHECKS")
    # Name of the Secrets Manager secret holding the QuickBooks app credentials (never plain env).
    qbo_app_secret_name: str = Field(default="", alias="QBO_APP_SECRET_NAME")
    # "sandbox", "production", or a discovery-document URL (the local emulator).
    qbo_environment: str = Field(default="sandbox", alias="QBO_ENVIRONMENT")
    qbo_api_base: str = Field(default="https://sandbox-quickbooks.api.intuit.com/v3", alias="QBO_API_BASE")
    qbo_redirect_uri: str = Field(default="", alias="QBO_REDIRECT_URI")
    qbo_minor_version: int = Field(default=75, alias="QBO_MINOR_VERSION")
    # Seconds per QuickBooks minute: 60 in production; the local runtime may scale time for tests.
    qbo_seconds_per_minute: float = Field(default=60.0, alias="QBO_SECONDS_PER_MINUTE")
    qbo_requests_per_minute: int = Field(default=500, alias="QBO_REQUESTS_PER_MINUTE")
    qbo_max_concurrent: int = Field(default=10, alias="QBO_MAX_CONCURRENT")
    qbo_batches_per_minute: int = Field(default=40, alias="QBO_BATCHES_PER_MINUTE")
    qbo_http_timeout_seconds: float = Field(default=30.0, alias="QBO_HTTP_TIMEOUT_SECONDS")
    # KMS key (id, ARN or alias) that encrypts QuickBooks OAuth tokens at rest.
    token_key_id: str = Field(default="", alias="TOKEN_KEY_ID")
    # The JWT claim naming the caller's tenant.
    tenant_claim: str = Field(default="tenant_id", alias="TENANT_CLAIM")
    # Email (workflows/documents/): the verified SES identity invoices are sent from (template
    # parameter SesFromAddress; empty: sending is not configured) and the configuration set
    # whose event destination reports sends, deliveries, bounces and complaints.
    ses_from_address: str = Field(default="", alias="SES_FROM_ADDRESS")
    ses_configuration_set: str = Field(default="", alias="SES_CONFIGURATION_SET")
    # Printed documents ("print many" PDFs): their S3 bucket and how long a presigned link lives.
    documents_bucket: str = Field(default="", alias="DOCUMENTS_BUCKET")
    documents_link_seconds: int = Field(default=900, ge=60, le=43200, alias="DOCUMENTS_LINK_SECONDS")
    # Where presigned links point: empty is S3 itself. The local stack sets its gateway's
    # local-only /__local/s3 path (moto's in-process S3 has no address a browser can open).
    documents_link_endpoint: str = Field(default="", alias="DOCUMENTS_LINK_ENDPOINT")
    # Powertools reads these itself for the shared Metrics object; quickbooks/metrics.py's
    # single_metric does not honour the switch, so it reads both here.
    metrics_disabled: bool = Field(default=False, alias="POWERTOOLS_METRICS_DISABLED")
    metrics_namespace: str = Field(default="Fieldbill", alias="POWERTOOLS_METRICS_NAMESPACE")
