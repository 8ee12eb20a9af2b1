"""``QboEmulator``: wires the parts together and serves them on 127.0.0.1 from a daemon thread."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from . import errors
from .api import CompanyApi
from .clock import Clock
from .config import Settings
from .entities import Accounting
from .faults import FaultInjector
from .jsonutil import to_decimal, to_wire
from .limits import Limiter
from .oauth import App, OAuthServer
from .store import Company, Store
from .webhooks import WebhookDispatcher


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class QboEmulator:
    """A QuickBooks Online emulator over real HTTP.

    ``time_scale`` = emulated seconds per real second (60.0: one emulated minute per real second); limit
    windows, token lifetimes and webhook retry delays run on emulated time. Extra keyword arguments are
    settings (see ``config.DEFAULTS``), e.g. ``QboEmulator(limits_enabled=False)``.
    ``state_path``: a file that keeps companies, tokens and counters across restarts (persist.py);
    without it everything lives in memory.
    """

    def __init__(
        self,
        port: int = 0,
        time_scale: float = 1.0,
        host: str = "127.0.0.1",
        state_path: Path | None = None,
        **settings: Any,
    ):
        self.host = host
        self._port = port
        self.clock = Clock(time_scale)
        self.settings = Settings(**settings)
        self.store = Store(self.clock, seed=self.settings.get("fault_seed"))
        self.accounting = Accounting(self.store, self.clock)
        self.api = CompanyApi(self.store, self.accounting, self.settings, self.clock)
        self.oauth = OAuthServer(self.clock, self.settings)
        self.limiter = Limiter(self.clock, self.settings)
        self.faults = FaultInjector(seed=self.settings.get("fault_seed"))
        self.webhooks = WebhookDispatcher(self.clock, self.settings, self.oauth)
        self.store.add_listener(self.webhooks.on_change)
        self.errors: list[str] = []  # tracebacks of emulator bugs answered as 500
        self._counters: dict[str, Counter] = {}
        self._counter_lock = threading.Lock()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        from .app import build_app

        self.app = build_app(self)
        self.persistence: Any = None
        self.restored_companies = 0
        if state_path is not None:
            from .persist import Persistence

            self.persistence = Persistence(self, state_path)
            self.restored_companies = self.persistence.restore()

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """The app, then what the request changed written durably, before a byte of the answer goes out."""
        answer = self.app(environ, start_response)
        self._persist()
        return answer  # type: ignore[no-any-return]

    def _persist(self) -> None:
        if self.persistence is not None:
            self.persistence.flush()

    # ---- lifecycle -----------------------------------------------------------------------------
    def start(self) -> QboEmulator:
        with self._start_lock:
            if self._server is not None:
                return self
            server = make_server(
                self.host, self._port, self._wsgi, threaded=True, request_handler=_QuietHandler
            )
            self._server = server
            self._port = server.server_port
            self.oauth.issuer = f"{self.url}/op/v1"  # the discovery document's issuer (id_tokens)
            self._thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="qbo-emulator", daemon=True
            )
            self._thread.start()
            self.webhooks.start()
            return self

    def stop(self) -> None:
        with self._start_lock:
            self.webhooks.stop()
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = None
            self._thread = None
            if self.persistence is not None:
                self.persistence.flush()
                self.persistence.close()
                self.persistence = None

    def __enter__(self) -> QboEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    @property
    def discovery_url(self) -> str:
        return f"{self.url}/.well-known/openid_configuration"

    @property
    def api_base(self) -> str:
        return f"{self.url}/v3"

    # ---- setup -------------------------------------------------------------------------------
    def register_app(
        self,
        client_id: str,
        client_secret: str,
        redirect_uris: list[str] | str,
        webhook_url: str | None = None,
        verifier_token: str | None = None,
        webhook_format: str = "legacy",
        webhooks_enabled: bool = True,
    ) -> App:
        if webhook_format not in ("legacy", "cloudevents"):
            raise ValueError("webhook_format must be 'legacy' or 'cloudevents'")
        uris = [redirect_uris] if isinstance(redirect_uris, str) else list(redirect_uris)
        app = App(
            client_id, client_secret, uris, webhook_url, verifier_token, webhook_format, webhooks_enabled
        )
        registered = self.oauth.register_app(app)
        self._persist()
        return registered

    def create_company(
        self,
        realm_id: str | None = None,
        name: str = "Demo Pool Co",
        custom_txn_numbers: bool = False,
        tz_offset_minutes: int = -420,
        automated_sales_tax: bool = False,
        tax_rates: dict[str, Any] | None = None,
    ) -> str:
        """A new company. `automated_sales_tax`: QuickBooks computes the tax of TAX lines from the
        customer's location, with `tax_rates` {postal code or state: percent}."""
        realm = self.store.create_company(
            realm_id, name, custom_txn_numbers, tz_offset_minutes, automated_sales_tax, tax_rates
        ).realm_id
        self._persist()
        return realm

    def set_preferences(
        self,
        realm: str,
        custom_txn_numbers: bool | None = None,
        automated_sales_tax: bool | None = None,
        tax_rates: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """What the company's user changes in QuickBooks' settings; applies to later transactions."""
        prefs = self.store.set_preferences(
            self._company(realm), custom_txn_numbers, automated_sales_tax, tax_rates
        )
        self._persist()
        return prefs

    def connect(self, client_id: str, realm: str) -> dict[str, Any]:
        """Connect an app to a company without the browser flow; returns a token response + realmId."""
        self._company(realm)
        grant = self.oauth.grant_for(client_id, realm)
        self._persist()
        return grant

    def _pick_realm(self, hint: str | None) -> str:
        if hint:
            if self.store.company(hint) is None:
                self.create_company(hint)
            return hint
        with self.store.lock:
            if self.store.companies:
                return next(iter(self.store.companies))
        return self.create_company()

    def _company(self, realm: str) -> Company:
        company = self.store.company(realm)
        if company is None:
            raise KeyError(f"no company {realm}")
        return company

    # ---- configuration -------------------------------------------------------------------------
    def configure(self, realm: str | None = None, **options: Any) -> None:
        """Change settings (see config.DEFAULTS), ``time_scale``, and fault rules.

        ``faults=[...]`` replaces the rules of the scope (realm, or global when realm is None),
        ``add_faults=[...]`` appends, ``clear_faults=True`` removes them.
        """
        if "time_scale" in options:
            self.clock.set_time_scale(float(options.pop("time_scale")))
        if options.pop("clear_faults", False):
            self.faults.clear(realm)
        if "faults" in options:
            self.faults.set_rules(realm, options.pop("faults") or [])
        for spec in options.pop("add_faults", []) or []:
            self.faults.add_rule(realm, spec)
        if "fault_seed" in options:
            self.faults.reseed(int(options["fault_seed"]))
        if options:
            self.settings.update(realm, options)

    def add_fault(self, realm: str | None = None, **rule: Any) -> None:
        self.faults.add_rule(realm, rule)

    def reset(self, realm: str | None = None) -> None:
        """realm: back to a freshly seeded company, counters/faults/limits/settings of that realm cleared.
        None: every company, grant, counter, fault and setting override is dropped (apps are kept)."""
        if realm is None:
            with self.store.lock:
                self.store.companies.clear()
            self.oauth.forget_realm(None)
            self.faults.clear(everything=True)
            self.faults.reseed(int(self.settings.get("fault_seed")))
            self.settings.reset()
            self.limiter.reset()
            self.webhooks.clear()
            with self._counter_lock:
                self._counters.clear()
            self._persist()
            return
        with self.store.lock:
            old = self._company(realm)
            del self.store.companies[realm]
            self.store.create_company(
                realm, old.name, old.custom_txn_numbers, old.tz_offset, old.automated_sales_tax, old.tax_rates
            )
        self.faults.clear(realm)
        self.settings.reset(realm)
        self.limiter.reset(realm)
        with self._counter_lock:
            self._counters.pop(realm, None)
        self._persist()

    def advance(self, seconds: float) -> None:
        """Move emulated time forward (expire tokens, pass limit windows)."""
        self.clock.advance(seconds)
        self._persist()

    # ---- inspection ----------------------------------------------------------------------------
    def state(self, realm: str) -> dict[str, Any]:
        """{"realmId", "CompanyName", "entities": {type: [..]}, "deleted": {type: [ids]}, "Preferences",
        "CompanyInfo"} as the wire shows them (money as Decimal)."""
        self._company(realm)
        return to_wire(self.store.snapshot(realm))

    def entities(self, realm: str, entity: str) -> list[dict[str, Any]]:
        company = self._company(realm)
        with self.store.lock:
            return to_wire(company.all(entity))

    def count(self, realm: str, entity: str) -> int:
        """How many records of `entity` the company holds (no copies: cheap enough to poll)."""
        company = self._company(realm)
        with self.store.lock:
            return len(company.entities[entity])

    def entity(self, realm: str, entity: str, id_: str) -> dict[str, Any] | None:
        company = self._company(realm)
        with self.store.lock:
            record = company.get(entity, id_)
            return None if record is None else to_wire(record)

    def calls(self, realm: str) -> dict[str, Any]:
        with self._counter_lock:
            counter = dict(self._counters.get(realm, Counter()))
        by_status = {k[7:]: v for k, v in counter.items() if k.startswith("status_")}
        return {
            "total": counter.get("requests", 0),
            "throttled": counter.get("throttled", 0),
            "replayed": counter.get("replayed", 0),
            "dropped": counter.get("dropped", 0) + counter.get("lost_after_commit", 0),
            "faults_injected": counter.get("faults_injected", 0),
            "batch_requests": counter.get("batch_requests", 0),
            "in_flight": self.limiter.in_flight(realm),
            "by_status": by_status,
            "counters": counter,
        }

    def _count(self, realm: str, key: str, n: int = 1) -> None:
        with self._counter_lock:
            counter = self._counters.setdefault(realm, Counter())
            counter[key] += n

    def _replay(self, company: Company, request_id: str) -> tuple[int, str, str] | None:
        cached = company.requestids.get(request_id)
        if cached is None:
            return None
        ts, status, text, ctype = cached
        ttl = self.settings.get("requestid_ttl", company.realm_id)
        if ttl is not None and self.clock.now() - ts > ttl:
            del company.requestids[request_id]
            return None
        return status, text, ctype

    # ---- webhooks ------------------------------------------------------------------------------
    def flush_webhooks(self, timeout: float = 10.0) -> bool:
        return self.webhooks.flush(timeout)

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        with self.webhooks._cond:
            return [dict(d) for d in self.webhooks.deliveries]

    # ---- changes "made in QuickBooks" by a user (no token, no SyncToken, no limits) ------------
    def user_create(self, realm: str, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        saved = self.accounting.save(
            self._company(realm), entity, {k: v for k, v in body.items() if k != "Id"}
        )
        self._persist()
        return saved[entity]  # type: ignore[no-any-return]

    def user_edit(self, realm: str, entity: str, id_: str, changes: dict[str, Any]) -> dict[str, Any]:
        body = dict(changes, Id=str(id_))
        saved = self.accounting.save(self._company(realm), entity, body, as_user=True)
        self._persist()
        return saved[entity]  # type: ignore[no-any-return]

    def user_delete(self, realm: str, entity: str, id_: str) -> dict[str, Any]:
        deleted = self.accounting.delete(self._company(realm), entity, {"Id": str(id_)}, as_user=True)
        self._persist()
        return deleted[entity]  # type: ignore[no-any-return]

    def user_void(self, realm: str, entity: str, id_: str) -> dict[str, Any]:
        voided = self.accounting.void(self._company(realm), entity, {"Id": str(id_)}, as_user=True)
        self._persist()
        return voided[entity]  # type: ignore[no-any-return]

    def pay_invoice(self, realm: str, invoice_id: str, amount: Any = None) -> dict[str, Any]:
        """Record a customer payment against an invoice (the full open balance by default)."""
        company = self._company(realm)
        with self.store.lock:
            invoice = company.get("Invoice", invoice_id)
            if invoice is None:
                raise errors.not_found("Invoice", invoice_id)
            value: Decimal = to_decimal(amount) if amount is not None else invoice["Balance"]  # type: ignore[assignment]
            body = {
                "CustomerRef": {"value": invoice["CustomerRef"]["value"]},
                "TotalAmt": value,
                "Line": [{"Amount": value, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
            }
            payment = self.accounting.save(company, "Payment", body)["Payment"]
        self._persist()
        return payment  # type: ignore[no-any-return]
