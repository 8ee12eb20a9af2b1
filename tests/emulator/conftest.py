"""Fixtures for the QuickBooks emulator conformance suite.

One emulator per test module (``emu``); every test gets its own fresh company (``realm``) connected to
the default app, and a small ``requests`` helper (``qbo``) that talks to it like a client would.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from local.qbo_emulator import QboEmulator

CLIENT_ID = "test-client"
CLIENT_SECRET = "test-secret"
REDIRECT_URI = "http://localhost:8765/callback"
TIME_SCALE = 60.0  # one emulated minute per real second


@pytest.fixture(scope="module")
def emu() -> Iterator[QboEmulator]:
    emulator = QboEmulator(port=0, time_scale=TIME_SCALE, webhook_delay=0.05)
    emulator.start()
    emulator.register_app(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI])
    yield emulator
    emulator.stop()
    assert emulator.errors == [], "the emulator hit internal errors:\n" + "\n".join(emulator.errors)


@pytest.fixture
def realm(emu: QboEmulator) -> str:
    return emu.create_company()


class Qbo:
    """Minimal Accounting API client over ``requests`` (no retries, no refresh)."""

    def __init__(self, emu: QboEmulator, realm: str, access_token: str) -> None:
        self.emu = emu
        self.realm = realm
        self.base = f"{emu.api_base}/company/{realm}"
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {access_token}", "Accept": "application/json"})

    def get(self, path: str, **params: Any) -> requests.Response:
        params.setdefault("minorversion", 75)
        return self.session.get(f"{self.base}/{path}", params=params, timeout=10)

    def post(self, path: str, body: Any = None, **params: Any) -> requests.Response:
        params.setdefault("minorversion", 75)
        return self.session.post(f"{self.base}/{path}", json=body, params=params, timeout=10)

    def create(self, entity: str, body: dict[str, Any], **params: Any) -> dict[str, Any]:
        resp = self.post(entity.lower(), body, **params)
        assert resp.status_code == 200, resp.text
        return resp.json()[entity]

    def query(self, text: str) -> dict[str, Any]:
        resp = self.get("query", query=text)
        assert resp.status_code == 200, resp.text
        return resp.json()["QueryResponse"]

    # seed helpers
    def customer(self, name: str = "Jane Doe", **extra: Any) -> dict[str, Any]:
        return self.create("Customer", {"DisplayName": name, **extra})

    def item(self, name: str = "Pool cleaning", price: Any = 85, **extra: Any) -> dict[str, Any]:
        body = {"Name": name, "Type": "Service", "IncomeAccountRef": {"value": "1"}, "UnitPrice": price}
        return self.create("Item", {**body, **extra})

    def invoice(self, customer_id: str, item_id: str, lines: list[tuple[Any, Any]], **extra: Any) -> dict:
        return self.create("Invoice", invoice_body(customer_id, item_id, lines, **extra))


def sales_line(item_id: str, qty: Any, price: Any, amount: Any = None) -> dict[str, Any]:
    from decimal import ROUND_HALF_UP, Decimal

    if amount is None:
        amount = float((Decimal(str(qty)) * Decimal(str(price))).quantize(Decimal("0.01"), ROUND_HALF_UP))
    return {
        "DetailType": "SalesItemLineDetail",
        "Amount": amount,
        "Description": "service",
        "SalesItemLineDetail": {
            "ItemRef": {"value": item_id},
            "Qty": qty,
            "UnitPrice": price,
            "TaxCodeRef": {"value": "NON"},
        },
    }


def invoice_body(
    customer_id: str, item_id: str, lines: list[tuple[Any, Any]], **extra: Any
) -> dict[str, Any]:
    return {
        "CustomerRef": {"value": customer_id},
        "Line": [sales_line(item_id, q, p) for q, p in lines],
        **extra,
    }


@pytest.fixture
def tokens(emu: QboEmulator, realm: str) -> dict[str, Any]:
    return emu.connect(CLIENT_ID, realm)


@pytest.fixture
def qbo(emu: QboEmulator, realm: str, tokens: dict[str, Any]) -> Qbo:
    return Qbo(emu, realm, tokens["access_token"])


def assert_fault(
    resp: requests.Response, status: int, code: str, fault_type: str = "ValidationFault"
) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"Fault", "time"}, body
    assert body["Fault"]["type"] == fault_type
    (error,) = body["Fault"]["Error"]
    assert set(error) == {"Message", "Detail", "code", "element"}
    assert error["code"] == code, error
    return error


class WebhookReceiver:
    """A tiny HTTP server collecting webhook POSTs; answers with ``statuses`` in turn, then 200."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "raw": raw, "status": status}
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def payloads(self) -> list[Any]:
        with self._lock:
            return [json.loads(r["raw"]) for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver()
    yield r
    r.close()
