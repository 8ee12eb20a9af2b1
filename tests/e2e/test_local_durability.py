"""`make serve` keeps its data: a stopped or killed `python -m local serve` comes back with it.

Each test runs the stack in its own subprocess (moto is process-global: the session `stack` of
this process stays untouched) on a temporary data directory, and talks to it over HTTP only.
Nothing waits a fixed time: every wait is for a state (the banner, a run's stage, a count).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from fieldbill.quickbooks.mapping import invoice_marker
from tests.conftest import ROOT, Client, choose_settings, wait_for

# Served subprocesses with real-time webhooks: run alone, after the parallel part of the suite.
pytestmark = pytest.mark.solo


class Served:
    """One `python -m local serve` on a data directory: its endpoints as the banner printed them."""

    def __init__(self, data_dir: Path, tenant: str, log: Path, pycache: Path):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "layers/shared/python"), str(ROOT)])
        # Bytecode outside the work tree, shared by this module's servers: only the first compiles.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
        args = ["--port", "0", "--qbo-port", "0", "--data-dir", str(data_dir), "--tenant", tenant]
        # Output to a file, not a pipe: the handlers' logs would fill an unread pipe and block serve.
        self.log = log
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "local", "serve", *args],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )

        def banner() -> bool:  # its last line says where the data lives
            assert self.proc.poll() is None, f"serve exited: {log.read_text()[-3000:]}"
            return any(line.startswith("Data: ") for line in log.read_text().splitlines())

        wait_for(banner, timeout=300, interval=0.1, what="the serve banner")
        lines = log.read_text().splitlines()
        self.banner = next(line for line in lines if line.startswith("Data: "))
        self.endpoints = dict(line.partition("=")[::2] for line in lines if line.split("=")[0].isupper())
        self.api_url = self.endpoints["API_URL"]
        self.qbo_url = self.endpoints["QBO_URL"]

    def token(self, tenant_id: str, subject: str = "user-1") -> str:
        return self.endpoints["TOKEN"]

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(method, f"{self.qbo_url}/__admin{path}", timeout=30, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def qbo_invoices(self, realm: str) -> list[dict[str, Any]]:
        return list(self.admin("GET", f"/companies/{realm}/state")["entities"]["Invoice"])

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)  # a clean stop: Ctrl-C in `make serve`
        self.proc.wait(timeout=120)

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no clean shutdown, nothing flushed on the way out
        self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def pycache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pycache")


@pytest.fixture
def served(tmp_path: Path, pycache: Path) -> Iterator[Any]:
    started: list[Served] = []

    def start(tenant: str) -> Served:
        server = Served(tmp_path / "state", tenant, tmp_path / f"serve-{len(started)}.log", pycache)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.kill()


def _connect(server: Served, api: Client, realm: str) -> None:
    url = api.ok("GET", "/quickbooks/connect")["authorization_url"]
    consent = requests.get(url + f"&realm={realm}", allow_redirects=False, timeout=30)
    assert consent.status_code in (302, 303), consent.text
    # The browser brings back the connect cookie (the state is bound to it).
    callback = requests.get(consent.headers["Location"], cookies=api.session.cookies, timeout=30)
    assert callback.status_code == 200, callback.text
    assert api.ok("GET", "/quickbooks/connection")["status"] == "connected"
    choose_settings(api)


def _billable_work(api: Client, contact: str, day: int) -> None:
    api.ok("POST", "/contacts", json={"id": contact, "name": f"{contact} Pools"})
    task = f"task-{contact}-{day}"
    api.ok(
        "POST",
        "/tasks",
        json={
            "id": task,
            "title": "Pool service",
            "client_contact_id": contact,
            "billable": True,
            "status": "done",
            "unit_price": "80.00",
        },
        expect=(201, 200, 409),
    )
    api.ok(
        "POST",
        f"/tasks/{task}/entries",
        json={"id": f"e-{day}", "kind": "time", "started_at": f"2026-10-{day:02d}T09:00:00+00:00"},
    )
    api.ok(
        "POST",
        f"/tasks/{task}/entries/e-{day}/stop",
        json={"stopped_at": f"2026-10-{day:02d}T10:30:00+00:00"},
    )


def _what_a_client_sees(api: Client, run_id: str) -> dict[str, Any]:
    """The records made above, less the fields QuickBooks' webhooks may still be updating."""

    def kept(record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if "updated" not in k and "sync_token" not in k}

    return {
        "contact": kept(api.ok("GET", "/contacts/c-1")),
        "task": kept(api.ok("GET", "/tasks/task-c-1-5")),
        "entry": kept(api.ok("GET", "/tasks/task-c-1-5/entries/e-5")),
        "invoices": [kept(i) for i in api.ok("GET", "/invoices")["items"]],
        "run": kept(api.ok("GET", f"/billing-runs/{run_id}")),
    }


def _assert_each_invoice_in_quickbooks_once(server: Served, api: Client, realm: str) -> list[dict[str, Any]]:
    ours = api.ok("GET", "/invoices?limit=200")["items"]
    theirs = server.qbo_invoices(realm)
    for invoice in ours:
        marker = invoice_marker(api.tenant_id, invoice["id"])
        copies = [q for q in theirs if marker in str(q.get("PrivateNote") or "")]
        assert len(copies) == 1, (invoice["id"], copies)
        assert copies[0]["Id"] == invoice["qbo_id"]
    assert len(theirs) == len(ours), "QuickBooks holds an invoice fieldbill does not know"
    doc_numbers = [q["DocNumber"] for q in theirs]
    assert len(set(doc_numbers)) == len(doc_numbers), doc_numbers
    return list(ours)


def test_data_created_over_the_api_is_there_after_a_restart_and_tokens_keep_working(served):
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    realm = "9130355000000101"
    server = served(tenant)
    assert "Data: " in server.banner and "state" in server.banner  # the banner says where data lives
    api = Client(server, tenant)
    _connect(server, api, realm)
    _billable_work(api, "c-1", 5)
    run = api.wait_run(api.ok("POST", "/billing-runs", json={"grouping": "per_contact"}, expect=202)["id"])
    assert run["status"] == "succeeded", run
    # QuickBooks' customer update (webhook) brings the contact's balance after the sync: let it
    # land before the snapshot, so the restart is compared with a settled company.
    total = Decimal(api.ok("GET", "/invoices")["items"][0]["total"])
    wait_for(
        lambda: Decimal(api.ok("GET", "/contacts/c-1")["balance"]) == total,
        # a delivery answered late on a busy machine is retried on Intuit's schedule (10, 20,
        # 30 s… in real time here), and later events wait for its ack
        timeout=150,
        what="the contact's balance from QuickBooks",
    )
    before = _what_a_client_sees(api, run["id"])
    assert [i["sync_status"] for i in before["invoices"]] == ["synced"]
    qbo_before = server.qbo_invoices(realm)
    server.stop()

    again = served(tenant)
    # The token minted by the first process still works against the second (same tenant, same data).
    api = Client(again, tenant)
    api.session.headers["Authorization"] = f"Bearer {server.endpoints['TOKEN']}"
    assert _what_a_client_sees(api, run["id"]) == before
    assert again.qbo_invoices(realm) == qbo_before  # the emulator's company came back too
    # QuickBooks tokens (KMS-encrypted in the table) still decrypt and still work with the emulator.
    assert api.ok("GET", "/quickbooks/connection")["status"] == "connected"
    assert api.ok("GET", "/quickbooks/accounts?type=Income")["items"]
    # And billing goes on where it stopped: a new run's invoice gets the next number, nothing twice.
    _billable_work(api, "c-2", 6)
    second = api.wait_run(api.ok("POST", "/billing-runs", json={"grouping": "per_contact"}, expect=202)["id"])
    assert second["status"] == "succeeded", second
    assert len(_assert_each_invoice_in_quickbooks_once(again, api, realm)) == 2


def test_a_serve_killed_at_the_sync_stage_resumes_or_fails_the_run_and_bills_each_invoice_once(served):
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    realm = "9130355000000202"
    server = served(tenant)
    api = Client(server, tenant)
    _connect(server, api, realm)
    for n in range(1, 5):
        _billable_work(api, f"c-{n}", n)
    # QuickBooks refuses every invoice write for now: the run cannot leave its sync stage, whatever
    # the machine's speed. Fault rules are not kept, so after the restart QuickBooks accepts them.
    server.admin(
        "POST",
        "/configure",
        json={
            "realm": realm,
            "add_faults": [{"kind": "status", "status": 503, "match": {"path_regex": "/(batch|invoice)"}}],
        },
    )
    run_id = api.ok("POST", "/billing-runs", json={"grouping": "per_contact"}, expect=202)["id"]

    def syncing() -> bool:
        run = api.ok("GET", f"/billing-runs/{run_id}")
        tried = server.admin("GET", f"/companies/{realm}/calls")["faults_injected"]
        return bool(run["stage"] == "syncing" and tried >= 1)

    wait_for(syncing, timeout=120, interval=0.1, what="the run syncing against a refusing QuickBooks")
    server.kill()

    again = served(tenant)
    assert "1 resumed" in again.banner or "1 failed" in again.banner, again.banner
    api = Client(again, tenant)
    run = api.wait_run(run_id)
    if run["status"] == "failed":
        assert run["errors"] and run["errors"][-1]["cause"], run  # failed with a reason
    else:
        assert run["status"] == "succeeded", run
    # The run's lock is free: the tenant can start another run.
    api.ok("POST", "/billing-runs", json={"grouping": "per_contact"}, expect=202)

    def all_synced() -> bool:
        invoices = api.ok("GET", "/invoices?limit=200")["items"]
        return len(invoices) == 4 and all(i["sync_status"] == "synced" for i in invoices)

    wait_for(all_synced, timeout=120, interval=0.2, what="every invoice synced after the restart")
    _assert_each_invoice_in_quickbooks_once(again, api, realm)
