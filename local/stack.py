"""The embedded local stack: moto (from template.yaml), the local gateway, and the QuickBooks emulator.

Handlers do not know they run locally: only endpoints differ (the QuickBooks discovery URL and API
base point at the emulator, the redirect URI at the local gateway).

`StackOptions.data_dir` makes the stack durable (docs/decisions/0004-durable-local-state.md):
AWS state in `data_dir/aws.sqlite`, the emulator's companies in `data_dir/qbo.sqlite`, written as
they change and restored on start; billing runs that were in flight resume or fail cleanly.
Without it (tests, `make demo`) everything lives in memory.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.auth import DevIssuer
from local.aws import LocalAws
from local.gateway import LOCAL_S3_PATH, Gateway
from local.moto_stepfunctions import ExecutionRecord
from local.qbo_emulator import QboEmulator
from local.template import ROOT, Template

LOCAL_CLIENT_ID = "fieldbill-local-client"
# The SES identity invoices are sent from locally (the template's SesFromAddress parameter).
LOCAL_SENDER = "invoices@fieldbill.local"


@dataclass
class StackOptions:
    # Real seconds per QuickBooks minute: 60 is real time; tests and the demo scale time down.
    seconds_per_minute: float = 60.0
    qbo_limits: bool = True
    webhook_verifier_token: str = field(
        default_factory=lambda: os.environ.get(
            "QBO_WEBHOOK_VERIFIER_TOKEN", "local-verifier-" + secrets.token_hex(8)
        )
    )
    client_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    gateway_port: int = 0
    emulator_port: int = 0
    poll_seconds: int = 1
    # Handlers log JSON lines like in Lambda; the demo turns them down to keep its summary readable.
    log_level: str = "INFO"
    metrics: bool = True
    # Where the state is kept across restarts; None keeps it in memory (tests, the demo).
    data_dir: Path | None = None
    # The Maildir every message sent through SES lands in; None: a fresh temporary directory.
    outbox_dir: Path | None = None


def _fresh_containers() -> None:
    """A new stack is like new Lambda containers: drop caches a previous stack in this process filled
    (settings read from the environment, the app secret, the QuickBooks discovery document, the
    S3 clients of prints)."""
    import sys

    if "fieldbill.settings" in sys.modules:
        sys.modules["fieldbill.settings"].get_settings.cache_clear()
    if "fieldbill.quickbooks.tokens" in sys.modules:
        sys.modules["fieldbill.quickbooks.tokens"].clear_cache()
    if "fieldbill.mail.ses" in sys.modules:
        sys.modules["fieldbill.mail.ses"].reset_client()
    if "fieldbill.workflows.documents.prints" in sys.modules:
        sys.modules["fieldbill.workflows.documents.prints"].clear_cache()
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()


class LocalStack:
    def __init__(self, options: StackOptions | None = None):
        self.options = options or StackOptions()
        data_dir = self.options.data_dir
        self.emulator = QboEmulator(
            port=self.options.emulator_port,
            time_scale=60.0 / self.options.seconds_per_minute,
            state_path=data_dir / "qbo.sqlite" if data_dir else None,
        )
        self.aws: LocalAws | None = None
        # What start() found in the data directory and did with runs in flight (the serve banner).
        self.restored: dict[str, Any] = {}
        self.gateway: Gateway | None = None
        self.issuer = DevIssuer()
        self.outbox = self.options.outbox_dir or Path(tempfile.mkdtemp(prefix="fieldbill-")) / "outbox"

    def start(self) -> LocalStack:
        opts = self.options
        started_at = int(time.time())
        _fresh_containers()
        self.emulator.start()
        if not opts.qbo_limits:
            self.emulator.configure(None, limits_enabled=False)
        template = Template(
            parameters={
                "QboEnvironment": self.emulator.discovery_url,
                "QboApiBase": self.emulator.api_base,
                "JwtIssuer": self.issuer.issuer,
                "JwtAudience": [self.issuer.audience],
                "SesFromAddress": LOCAL_SENDER,
            }
        )
        self.aws = LocalAws(
            template,
            secret_values={
                "client_id": LOCAL_CLIENT_ID,
                "client_secret": opts.client_secret,
                "webhook_verifier_token": opts.webhook_verifier_token,
            },
            environment={
                "QBO_SECONDS_PER_MINUTE": str(opts.seconds_per_minute),
                "BILLING_RUN_POLL_SECONDS": str(opts.poll_seconds),
                "POWERTOOLS_METRICS_NAMESPACE": "Fieldbill",
                "POWERTOOLS_LOG_LEVEL": opts.log_level,
                "POWERTOOLS_METRICS_DISABLED": "false" if opts.metrics else "true",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_DEV": "false",
            },
            data_dir=opts.data_dir,
            outbox=self.outbox,
        ).start()
        self.gateway = Gateway(
            self.aws.registry,
            self.issuer,
            port=opts.gateway_port,
            fire_schedule=self.aws.fire_schedule,
            outbox=self.outbox,
        )
        redirect_uri = f"{self.gateway.url}/quickbooks/callback"
        os.environ["QBO_REDIRECT_URI"] = redirect_uri
        # moto's S3 has no address a browser can open: presigned links point at the gateway.
        os.environ["DOCUMENTS_LINK_ENDPOINT"] = f"{self.gateway.url}{LOCAL_S3_PATH}"
        self.emulator.register_app(
            LOCAL_CLIENT_ID,
            opts.client_secret,
            [redirect_uri],
            webhook_url=f"{self.gateway.url}/webhooks/quickbooks",
            verifier_token=opts.webhook_verifier_token,
        )
        self.gateway.start()
        if opts.data_dir is not None:
            # The attempts that held QuickBooks create claims died with the old process: their
            # invoices are created (after a look-up) now, not after the claims' lease.
            from fieldbill.store import invoice_sync

            invoice_sync.release_claims_before(started_at)
            # Last: a resumed run needs every queue consumer and the emulator up.
            runs = self.aws.resume_executions(self._fail_unresumable_run, self._run_still_in_flight)
            self.restored = {
                **self.aws.restored,
                "companies": self.emulator.restored_companies,
                **{f"runs_{k}": len(v) for k, v in runs.items()},
            }
        return self

    # ---------------------------------------------------------------- runs in flight at a restart
    @staticmethod
    def _run_of(record: ExecutionRecord) -> tuple[str, str] | None:
        """(tenant, run) of a billing-run execution: its input carries both (statemachines/)."""
        state = json.loads(record.input or "{}")
        if isinstance(state, dict) and "tenant_id" in state and "run_id" in state:
            return str(state["tenant_id"]), str(state["run_id"])
        return None

    def _run_still_in_flight(self, record: ExecutionRecord) -> bool:
        run = self._run_of(record)
        if run is None:
            return True
        from fieldbill.domain.errors import NotFound
        from fieldbill.workflows.billing.run import get_run

        try:
            return get_run(*run).stage != "finished"
        except NotFound:
            return False  # no run behind the execution: nothing to resume

    def _fail_unresumable_run(self, record: ExecutionRecord, reason: str) -> None:
        """End the run as the state machine's RecordFailure does: failed with a reason, lock released."""
        run = self._run_of(record)
        if run is None or self.aws is None:
            return
        template = self.aws.template
        finish = next(
            (
                template.resolve(res["Properties"]["DefinitionSubstitutions"]["RunFinishFunctionArn"])
                for res in template.of_type("AWS::Serverless::StateMachine").values()
                if "RunFinishFunctionArn" in res["Properties"].get("DefinitionSubstitutions", {})
            ),
            None,
        )
        if finish is None:
            return
        error = {
            "Error": "LocalStackRestarted",
            "Cause": f"the local stack stopped while this run was in flight and {reason}: not resumed",
        }
        try:
            self.aws.registry.invoke(finish, {"tenant_id": run[0], "run_id": run[1], "error": error})
        except Exception:  # one run that cannot be failed must not keep the stack from starting
            traceback.print_exc()

    def stop(self) -> None:
        if self.gateway:
            self.gateway.stop()
        if self.aws:
            self.aws.stop()
        self.emulator.stop()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ---------------------------------------------------------------- conveniences
    @property
    def api_url(self) -> str:
        assert self.gateway is not None
        return self.gateway.url

    @property
    def outbox_url(self) -> str:
        return f"{self.api_url}/__outbox"

    @property
    def webhook_url(self) -> str:
        return f"{self.api_url}/webhooks/quickbooks"

    def token(self, tenant_id: str, subject: str = "user-1") -> str:
        return self.issuer.mint(tenant_id, subject=subject)

    def endpoints(self, tenant_id: str) -> dict[str, str]:
        return {
            "API_URL": self.api_url,
            "QBO_URL": self.emulator.url,
            "WEBHOOK_URL": self.webhook_url,
            "OUTBOX_URL": self.outbox_url,
            "TOKEN": self.token(tenant_id),
            "TENANT": tenant_id,
        }

    def write_endpoints(self, tenant_id: str) -> dict[str, str]:
        endpoints = self.endpoints(tenant_id)
        path = ROOT / ".local" / "endpoints.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(endpoints, indent=2) + "\n")
        return endpoints
