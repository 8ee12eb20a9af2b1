"""Shared fixtures: ONE local stack per test process (moto is process-global), tenants isolate tests.

Tests that need AWS or QuickBooks take `stack` (or `client`, a web client for a fresh tenant).
Never start another `mock_aws()` in a process that uses `stack`: moto would reset the stack's
resources. Each test works in its own tenant (and its own QuickBooks company) instead.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"

# One QuickBooks minute lasts this many real seconds in tests (limits and back-offs scale with it).
TEST_SECONDS_PER_MINUTE = 1.0


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def wait_for(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05, what: str = "") -> Any:
    """Poll until check() returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def stack() -> Iterator[Any]:
    from local.stack import LocalStack, StackOptions

    local = LocalStack(StackOptions(seconds_per_minute=TEST_SECONDS_PER_MINUTE, poll_seconds=1)).start()
    yield local
    local.stop()


class Client:
    """A web client of one tenant: JSON in, JSON out, with the tenant's bearer token."""

    def __init__(self, stack: Any, tenant_id: str):
        self.stack = stack
        self.tenant_id = tenant_id
        self.base = stack.api_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {stack.token(tenant_id)}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.base + path, timeout=30, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, json=json, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def ok(
        self, method: str, path: str, expect: int | tuple[int, ...] = (200, 201, 202), **kwargs: Any
    ) -> Any:
        response = self.request(method, path, **kwargs)
        expected = (expect,) if isinstance(expect, int) else expect
        assert response.status_code in expected, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def wait_operation(self, operation_id: str, timeout: float = 60.0) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            op = self.ok("GET", f"/operations/{operation_id}")
            return op if op["status"] in ("succeeded", "failed", "cancelled") else None

        return wait_for(done, timeout, what=f"operation {operation_id}")

    def wait_run(self, run_id: str, timeout: float = 120.0) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            run = self.ok("GET", f"/billing-runs/{run_id}")
            return run if run["stage"] == "finished" else None

        return wait_for(done, timeout, interval=0.2, what=f"billing run {run_id}")


@pytest.fixture
def tenant_id() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def client(stack: Any, tenant_id: str) -> Client:
    return Client(stack, tenant_id)


@pytest.fixture
def connected_client(stack: Any, client: Client) -> Client:
    """A tenant connected to its own QuickBooks company through the real OAuth flow."""
    connect_quickbooks(stack, client)
    return client


def choose_settings(client: Client) -> dict[str, Any]:
    """The setup step the integration guide asks for: default accounts from QuickBooks' live lists."""
    income = client.ok("GET", "/quickbooks/accounts?type=Income")["items"]
    expense = client.ok("GET", "/quickbooks/accounts?type=Expense")["items"]
    body = {
        "default_income_account": next(a["id"] for a in income if a["name"] == "Pool Service Income"),
        "default_expense_account": next(a["id"] for a in expense if a["name"] == "Chemicals"),
        "custom_txn_numbers": False,
        "automated_tax": True,
    }
    return dict(client.ok("PUT", "/quickbooks/settings", json=body))


def connect_quickbooks(stack: Any, client: Client, realm_id: str | None = None, settings: bool = True) -> str:
    realm = stack.emulator.create_company(realm_id=realm_id, name=f"{client.tenant_id} company")
    url = client.ok("GET", "/quickbooks/connect")["authorization_url"]
    # The browser leg: Intuit's consent page redirects back to our public callback.
    consent = requests.get(url + f"&realm={realm}", allow_redirects=False, timeout=30)
    assert consent.status_code in (302, 303), consent.text
    # The browser that called /quickbooks/connect brings its connect cookie back to the callback
    # (the callback refuses a consent completed in any other browser session).
    callback = requests.get(consent.headers["Location"], cookies=client.session.cookies, timeout=30)
    assert callback.status_code == 200, callback.text
    status = client.ok("GET", "/quickbooks/connection")
    assert status["status"] == "connected", status
    if settings:
        choose_settings(client)
    return realm


def refuse_next(stack: Any, realm: str, path_regex: str, detail: str = "The period is closed.") -> None:
    """QuickBooks refuses the next POST matching `path_regex` with a business validation error
    (6000, as Intuit answers a write into a closed period): once, then it accepts again."""
    fault = {
        "Fault": {
            "Error": [
                {
                    "Message": "A business validation error has occurred while processing your request",
                    "Detail": f"Business Validation Error: {detail}",
                    "code": "6000",
                    "element": "",
                }
            ],
            "type": "ValidationFault",
        },
        "time": "2026-12-03T08:00:00.000-08:00",
    }
    stack.emulator.add_fault(
        realm,
        kind="status",
        status=400,
        count=1,
        body=json.dumps(fault),
        match={"method": "POST", "path_regex": path_regex},
    )
