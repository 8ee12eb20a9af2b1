"""The QuickBooks sync consumer end to end: moto (from template.yaml) + the real handler polled from
the real queue + the QuickBooks emulator. Each test works in its own tenant and its own company.

Helpers named qbo_* are shared with test_qbo_tokens.py.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlparse

import boto3
import pytest
import requests

from fieldbill.clock import now_iso
from fieldbill.domain.money import line_amount
from fieldbill.quickbooks import metrics as qmetrics
from fieldbill.quickbooks import tokens
from fieldbill.quickbooks.client import QboClient
from fieldbill.quickbooks.limiter import RateLimiter
from fieldbill.store import invoice_sync
from fieldbill.store import invoices as lifecycle
from fieldbill.store.models import (
    META,
    Contact,
    Entity,
    Invoice,
    InvoiceLine,
    Product,
    QboConnection,
    qbo_ref_key,
)
from fieldbill.workflows.inbound import reconnect
from fieldbill.workflows.messages import QboSyncMessage
from fieldbill.workflows.qbo_sync import consumer, requeue, tenants
from fieldbill.workflows.qbo_sync import invoices as sync_invoices
from tests.conftest import wait_for

# The sync machine's statuses: an invoice's history also holds its own status steps (a synced
# draft becomes open, issue 13), which these tests check separately.
SYNC_STATES = {"not_synced", "pending", "synced", "error", "unknown"}


def sync_steps(history: Any) -> list[tuple[str | None, str]]:
    return [(h.from_state, h.to_state) for h in history if h.to_state in SYNC_STATES]


pytestmark = pytest.mark.integration


# ------------------------------------------------------------------------------------ helpers
def qbo_connect(
    stack: Any, tenant_id: str, webhooks: bool = False, settings: bool = True, **company: Any
) -> str:
    """Connect `tenant_id` to a new emulator company through the real OAuth flow (our side only)
    and, unless `settings=False`, save the setup's two default accounts (the company's first
    income and expense accounts). Webhooks are off by default: the inbound worker's reads of what
    we create would count as calls of the company and spend its (sometimes tiny) limits."""
    realm = stack.emulator.create_company(name=f"{tenant_id} company", **company)
    if not webhooks:
        stack.emulator.configure(realm, webhooks_enabled=False)
    url = tokens.authorization_url(tenant_id)
    consent = requests.get(url + f"&realm={realm}", allow_redirects=False, timeout=10)
    assert consent.status_code in (302, 303), consent.text
    query = parse_qs(urlparse(consent.headers["Location"]).query)
    assert tokens.complete_connection(query["state"][0], query["code"][0], query["realmId"][0]) == tenant_id
    if settings:
        tokens.save_settings(tenant_id, qbo_default_accounts(stack, realm), "test")
    return realm


def qbo_default_accounts(stack: Any, realm: str) -> dict[str, str]:
    accounts = stack.emulator.entities(realm, "Account")
    return {
        "default_income_account": next(a["Id"] for a in accounts if a["AccountType"] == "Income"),
        "default_expense_account": next(a["Id"] for a in accounts if a["AccountType"] == "Expense"),
    }


def qbo_tenant() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def seed_contact(tenant_id: str, name: str, contact_id: str = "c1") -> Contact:
    record = Contact(
        pk=Contact.key(tenant_id, contact_id),
        sk=META,
        tenant_id=tenant_id,
        id=contact_id,
        name=name,
        email="owner@example.com",
    )
    record.save()
    return record


def seed_product(tenant_id: str, name: str, product_id: str = "p1", kind: str = "service") -> Product:
    record = Product(
        pk=Product.key(tenant_id, product_id),
        sk=META,
        tenant_id=tenant_id,
        id=product_id,
        name=name,
        kind=kind,
        default_unit_price=Decimal("80"),
    )
    record.save()
    return record


def seed_invoice(
    tenant_id: str,
    invoice_id: str | None = None,
    contact_id: str = "c1",
    lines: list[tuple[str, str, str]] | None = None,
    run_id: str = "run-1",
) -> Invoice:
    """lines: (product id, quantity, unit price); amounts follow the one rounding rule."""
    invoice_id = invoice_id or uuid.uuid4().hex
    built = []
    for product_id, qty, price in lines or [("p1", "1.5", "80"), ("p1", "0.333333", "75")]:
        q, p = Decimal(qty), Decimal(price)
        built.append(
            InvoiceLine(
                line_kind="task_entry",
                description=f"work {qty}h",
                product_id=product_id,
                product_name="Service",
                quantity=q,
                unit_price=p,
                amount=line_amount(q, p),
                work_date="2024-05-06",
            )
        )
    total = sum((ln.amount for ln in built), Decimal("0"))
    issue = date(2024, 5, 31)
    record = Invoice(
        pk=Invoice.key(tenant_id, invoice_id),
        sk=META,
        tenant_id=tenant_id,
        id=invoice_id,
        gsi1pk=Invoice.list_key(tenant_id),
        gsi1sk=f"{issue.isoformat()}#{invoice_id}",
        gsi2pk=Invoice.run_key(tenant_id, run_id),
        gsi2sk=Invoice.run_sort_key("not_synced", invoice_id),
        contact_id=contact_id,
        status="draft",
        lines=built,
        subtotal=total,
        total=total,
        issue_date=issue.isoformat(),
        due_date=(issue + timedelta(days=30)).isoformat(),
        run_id=run_id,
    )
    record.save()
    return record


def load_invoice(tenant_id: str, invoice_id: str) -> Invoice:
    record = Entity.get(Invoice.key(tenant_id, invoice_id), META, consistent_read=True)
    assert isinstance(record, Invoice)
    return record


def connection(tenant_id: str) -> QboConnection:
    found = tokens.get_connection(tenant_id)
    assert found is not None
    return found


def send(stack: Any, tenant_id: str, entity_id: str, kind: str = "sync_invoice", version: int = 1) -> None:
    message = QboSyncMessage(
        kind=kind, tenant_id=tenant_id, entity_id=entity_id, run_id="run-1", version=version
    )  # type: ignore[arg-type]
    boto3.client("sqs").send_message(
        QueueUrl=stack.aws.environment["QBO_SYNC_QUEUE_URL"],
        MessageBody=message.model_dump_json(exclude_none=True),
    )


def send_many(stack: Any, tenant_id: str, invoice_ids: list[str]) -> None:
    url = stack.aws.environment["QBO_SYNC_QUEUE_URL"]
    sqs = boto3.client("sqs")
    for start in range(0, len(invoice_ids), 10):
        entries = [
            {
                "Id": str(i),
                "MessageBody": QboSyncMessage(
                    kind="sync_invoice", tenant_id=tenant_id, entity_id=inv, run_id="run-1", version=1
                ).model_dump_json(),
            }
            for i, inv in enumerate(invoice_ids[start : start + 10])
        ]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)


def wait_settled(tenant_id: str, invoice_ids: list[str], timeout: float = 60.0) -> list[Invoice]:
    def settled() -> list[Invoice] | None:
        found = [load_invoice(tenant_id, i) for i in invoice_ids]
        return found if all(f.sync_status in ("synced", "error") for f in found) else None

    return wait_for(settled, timeout=timeout, interval=0.1, what=f"{len(invoice_ids)} invoice(s) settled")


def drain_sync(stack: Any, timeout: float = 30.0) -> None:
    """Wait until the QuickBooks sync queue is empty (other workers' queues are not ours to wait for)."""
    stack.aws.drain(timeout=timeout, ignore=("DLQ", "Inbound", "Jobs"))


def ours(stack: Any, realm: str, entity: str = "Invoice") -> list[dict[str, Any]]:
    return [
        e
        for e in stack.emulator.entities(realm, entity)
        if entity != "Invoice" or str(e.get("PrivateNote", "")).startswith("fieldbill:invoice:")
    ]


# ------------------------------------------------------------------------------------ tests
def test_happy_path_creates_customer_item_and_invoice_once(stack):
    # Given a connected tenant with a contact, a product and an invoice of two lines
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant)
    seed_contact(tenant, "Pool Owner")
    seed_product(tenant, "Weekly pool service")
    invoice = seed_invoice(tenant)
    # When its sync message is consumed
    send(stack, tenant, invoice.id)
    (synced,) = wait_settled(tenant, [invoice.id])
    # Then QuickBooks holds exactly one invoice with our amounts, customer and item
    assert synced.sync_status == "synced", synced.sync_error
    (qbo,) = ours(stack, realm)
    contact = Entity.get(Contact.key(tenant, "c1"), META)
    product = Entity.get(Product.key(tenant, "p1"), META)
    assert qbo["CustomerRef"]["value"] == contact.qbo_id
    sales = [ln for ln in qbo["Line"] if ln["DetailType"] == "SalesItemLineDetail"]
    assert [ln["Amount"] for ln in sales] == [Decimal("120.00"), Decimal("25.00")]
    assert {ln["SalesItemLineDetail"]["ItemRef"]["value"] for ln in sales} == {product.qbo_id}
    # and the links are indexed by QuickBooks id, where webhooks and pulls look them up
    assert (contact.gsi2pk, contact.gsi2sk) == (qbo_ref_key(tenant, "Customer"), contact.qbo_id)
    assert (product.gsi2pk, product.gsi2sk) == (qbo_ref_key(tenant, "Item"), product.qbo_id)
    assert qbo["PrivateNote"] == f"fieldbill:invoice:{tenant}:{invoice.id}"
    assert Decimal(str(qbo["TotalAmt"])) == invoice.total == Decimal("145.00")
    # And the invoice records the link, the total, the audit entry and its run index key
    assert synced.qbo_id == qbo["Id"] and synced.qbo_sync_token == qbo["SyncToken"]
    assert synced.qbo_doc_number == qbo["DocNumber"]  # custom numbers off: QuickBooks numbered it
    assert synced.qbo_total == Decimal("145.00") and synced.synced_at
    last_sync = [h for h in synced.history if h.to_state in SYNC_STATES][-1]
    assert last_sync.to_state == "synced" and last_sync.actor == "qbo_sync"
    assert synced.gsi2sk == Invoice.run_sort_key("synced", invoice.id)
    # When the same message arrives again, nothing is sent to QuickBooks
    calls = stack.emulator.calls(realm)["total"]
    send(stack, tenant, invoice.id)
    drain_sync(stack)
    assert len(ours(stack, realm)) == 1
    assert stack.emulator.calls(realm)["total"] == calls


def test_changed_invoice_is_a_sparse_update_even_after_an_edit_in_quickbooks(stack):
    # Given a synced invoice that someone then edited in QuickBooks (its SyncToken moved on)
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant)
    seed_contact(tenant, "Update Owner")
    seed_product(tenant, "Service")
    invoice = seed_invoice(tenant)
    send(stack, tenant, invoice.id)
    first = wait_settled(tenant, [invoice.id])[0]
    stack.emulator.user_edit(realm, "Invoice", first.qbo_id, {"CustomerMemo": {"value": "edited in QBO"}})
    # When our invoice changes (version 2, one line more) and its message arrives
    record = load_invoice(tenant, invoice.id)
    extra = InvoiceLine(
        line_kind="goods",
        description="chlorine",
        product_id="p1",
        product_name="Service",
        quantity=Decimal("3"),
        unit_price=Decimal("0.125"),
        amount=Decimal("0.38"),
    )
    record.update(
        actions=[
            Invoice.lines.set([*record.lines, extra]),
            Invoice.version.set(2),
            Invoice.total.set(record.total + Decimal("0.38")),
        ]
    )
    send(stack, tenant, invoice.id, version=2)

    def updated() -> Invoice | None:
        got = load_invoice(tenant, invoice.id)
        return got if got.qbo_total == Decimal("145.38") else None

    after = wait_for(updated, timeout=30, what="sparse update")
    # Then the same QuickBooks invoice was updated (5010 re-read and retried), never a second one
    (qbo,) = ours(stack, realm)
    assert qbo["Id"] == first.qbo_id and Decimal(str(qbo["TotalAmt"])) == Decimal("145.38")
    assert int(after.qbo_sync_token) > int(first.qbo_sync_token) + 1
    assert after.sync_status == "synced"


def test_duplicate_name_6240_resolves_to_the_existing_customer(stack):
    # Given QuickBooks already has the customer under a name our query does not match exactly
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant)
    existing = stack.emulator.user_create(realm, "Customer", {"DisplayName": "Jane   Doe"})
    seed_contact(tenant, "Jane Doe")
    seed_product(tenant, "Service")
    invoice = seed_invoice(tenant)
    # When the invoice syncs (our create of "Jane Doe" answers 6240)
    send(stack, tenant, invoice.id)
    (synced,) = wait_settled(tenant, [invoice.id])
    # Then the existing customer is used and linked, and no second customer exists
    assert synced.sync_status == "synced", synced.sync_error
    contact = Entity.get(Contact.key(tenant, "c1"), META)
    assert contact.qbo_id == existing["Id"]
    assert [
        c["Id"]
        for c in stack.emulator.entities(realm, "Customer")
        if c["DisplayName"].replace(" ", "") == "JaneDoe"
    ] == [existing["Id"]]
    assert ours(stack, realm)[0]["CustomerRef"]["value"] == existing["Id"]


def test_lost_after_commit_leaves_exactly_one_invoice(stack):
    # Given QuickBooks commits the create and then drops the connection, and forgets requestids
    # at once (so only our look-up before the retry can prevent a duplicate)
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant)
    seed_contact(tenant, "Lost Owner")
    seed_product(tenant, "Service")
    invoice = seed_invoice(tenant)
    stack.emulator.configure(realm, requestid_ttl=0)
    stack.emulator.add_fault(
        realm, kind="lost_after_commit", count=1, match={"method": "POST", "path_regex": r"/invoice$"}
    )
    # When the invoice syncs
    send(stack, tenant, invoice.id)
    (synced,) = wait_settled(tenant, [invoice.id])
    # Then the retry found the committed invoice instead of creating a second one
    assert stack.emulator.calls(realm)["dropped"] == 1
    (qbo,) = ours(stack, realm)
    assert synced.sync_status == "synced" and synced.qbo_id == qbo["Id"]
    # And its history shows the doubt, every step allowed by the sync machine
    steps = [
        (h.from_state, h.to_state)
        for h in synced.history
        if h.actor == "qbo_sync" and h.to_state in SYNC_STATES
    ]
    assert steps == [("not_synced", "pending"), ("pending", "unknown"), ("unknown", "synced")], steps
    # And the draft QuickBooks now holds becomes open (a write of its own, right after)
    opened = wait_for(lambda: (r := load_invoice(tenant, invoice.id)).status == "open" and r, what="open")
    assert ("draft", "open") in [(h.from_state, h.to_state) for h in opened.history]


def test_429_storm_ends_with_everything_synced_and_no_duplicates(stack):
    # Given a company that allows far fewer calls than our limiter assumes, and a storm forced
    # whatever the machine's speed: its first twelve calls answered 429, six with a Retry-After
    # and then six without (those make our cool-down grow, as the company's own limit does)
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant)
    seed_contact(tenant, "Storm Owner")
    seed_product(tenant, "Service")
    ids = [seed_invoice(tenant).id for _ in range(24)]
    stack.emulator.configure(realm, requests_per_minute=4, batch_per_minute=1)
    stack.emulator.add_fault(realm, kind="status", status=429, count=6, retry_after=2)
    stack.emulator.add_fault(realm, kind="status", status=429, count=6)
    # When all their messages arrive at once
    send_many(stack, tenant, ids)
    settled = wait_settled(tenant, ids, timeout=120)
    # Then every invoice is synced exactly once, after QuickBooks throttled us
    assert all(s.sync_status == "synced" for s in settled), [s.sync_error for s in settled if s.sync_error]
    qbo = ours(stack, realm)
    assert len(qbo) == len(ids)
    assert sorted(q["Id"] for q in qbo) == sorted(s.qbo_id for s in settled)
    calls = stack.emulator.calls(realm)
    # (the company's own limit may refuse more calls on top, as fast as the machine runs: not counted on)
    assert calls["faults_injected"] == 12 and calls["by_status"].get("429", 0) >= 12, calls


def test_limiter_keeps_a_burst_under_the_company_limit_without_429(stack, monkeypatch):
    # Given a company whose limits equal ours
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant)
    seed_contact(tenant, "Burst Owner")
    seed_product(tenant, "Service")
    ids = [seed_invoice(tenant).id for _ in range(20)]
    deferred: list[str | None] = []
    real_count = qmetrics.count

    def count(name, realm_id, value=1):
        if name == "LimiterDeferrals":
            deferred.append(realm_id)
        return real_count(name, realm_id, value)

    monkeypatch.setattr(qmetrics, "count", count)
    # When 20 invoices arrive together
    send_many(stack, tenant, ids)
    settled = wait_settled(tenant, ids, timeout=60)
    # Then all are synced, with no 429 at all, mostly through the batch endpoint
    assert all(s.sync_status == "synced" for s in settled)
    calls = stack.emulator.calls(realm)
    assert calls["throttled"] == 0
    assert calls["batch_requests"] >= 1
    assert len(ours(stack, realm)) == 20
    # And without being held back: our limiter never made a record of the burst wait in the queue
    # (what the old bound on the wall time stood for, whatever the machine's speed)
    assert realm not in deferred


def test_permanent_validation_error_is_recorded_with_code_and_element_and_not_retried(stack):
    # Given a product linked to an item that does not exist in QuickBooks
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant)
    seed_contact(tenant, "Error Owner")
    product = seed_product(tenant, "Ghost item")
    product.update(actions=[Product.qbo_id.set("999999")])
    invoice = seed_invoice(tenant)
    # When the invoice syncs
    send(stack, tenant, invoice.id)
    (failed,) = wait_settled(tenant, [invoice.id])
    # Then the invoice records QuickBooks' fault, the message is consumed and nothing was created
    assert failed.sync_status == "error"
    error = failed.sync_error.as_dict()
    assert error["code"] == "2500"
    assert error["element"] == "Line.SalesItemLineDetail.ItemRef"
    assert failed.gsi2sk == Invoice.run_sort_key("error", invoice.id)
    assert failed.history[-1].to_state == "error"
    drain_sync(stack)
    assert ours(stack, realm) == []


def test_nothing_syncs_until_the_settings_are_saved_then_the_refused_invoice_resumes(stack):
    # Given a company connected but whose setup (the two default accounts) is not done
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant, settings=False)
    seed_contact(tenant, "Setup Owner")
    seed_product(tenant, "Setup service")
    invoice = seed_invoice(tenant)
    # When its invoice is queued
    send(stack, tenant, invoice.id)
    (refused,) = wait_settled(tenant, [invoice.id])
    # Then it is in error naming the missing setting, and QuickBooks was not called at all
    assert refused.sync_status == "error"
    error = refused.sync_error.as_dict()
    assert error["code"] == tenants.SETTINGS_INCOMPLETE
    assert error["element"] == "default_income_account"
    assert "default_expense_account" in error["detail"]
    drain_sync(stack)
    assert stack.emulator.calls(realm)["total"] == 0
    assert stack.emulator.entities(realm, "Customer") == []
    # When the settings are saved (what PUT /quickbooks/settings does) and waiting work resumes
    missing_before = tokens.save_settings(tenant, qbo_default_accounts(stack, realm), "test")
    assert missing_before == ["default_income_account", "default_expense_account"]
    assert reconnect.resume_sync(tenant, "settings completed") == 1
    # Then the invoice syncs once, its new item on the chosen default income account
    wait_for(
        lambda: load_invoice(tenant, invoice.id).sync_status == "synced", timeout=60, what="invoice synced"
    )
    assert len(ours(stack, realm)) == 1
    (item,) = stack.emulator.entities(realm, "Item")
    assert item["IncomeAccountRef"]["value"] == qbo_default_accounts(stack, realm)["default_income_account"]


def test_invalid_grant_marks_needs_reconnect_and_keeps_the_message(stack):
    # Given a connection whose access token has expired and whose refresh will be refused
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant)
    seed_contact(tenant, "Reconnect Owner")
    seed_product(tenant, "Service")
    invoice = seed_invoice(tenant)
    connection(tenant).update(actions=[QboConnection.access_expires_at.set(int(time.time()) - 1)])
    tokens.clear_cache()
    stack.emulator.add_fault(realm, kind="invalid_grant", count=1)
    # When the sync message is consumed
    send(stack, tenant, invoice.id)
    wait_for(lambda: connection(tenant).status == "needs_reconnect", timeout=30, what="needs_reconnect")
    # Then the connection needs a person, the invoice is untouched and the message waits in the queue
    assert connection(tenant).history[-1].to_state == "needs_reconnect"
    assert load_invoice(tenant, invoice.id).sync_status == "not_synced"
    sqs = boto3.client("sqs")
    url = stack.aws.environment["QBO_SYNC_QUEUE_URL"]

    def kept() -> bool:
        attrs = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
        )
        return int(attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"]) >= 1

    try:
        wait_for(kept, timeout=10, what="message kept in flight")
        assert ours(stack, realm) == []
        # And its receipt handle was noted: a reconnect can make it visible at once
        assert wait_for(lambda: requeue.resume_parked(tenant), timeout=10, what="parked message resumed") >= 1
    finally:
        sqs.purge_queue(
            QueueUrl=url
        )  # it would keep looking (1, 2, 4 … 60 QuickBooks minutes) until reconnected


def sqs_event(messages: list[QboSyncMessage], receive_count: int = 1) -> dict[str, Any]:
    """An SQS event as the event source mapping delivers it (for calling the handler directly)."""
    return {
        "Records": [
            {
                "messageId": f"m-{n}-{uuid.uuid4().hex[:8]}",
                "receiptHandle": f"rh-{n}",
                "body": m.model_dump_json(exclude_none=True),
                "attributes": {
                    "ApproximateReceiveCount": str(receive_count),
                    "SentTimestamp": str(int(time.time() * 1000)),
                    "SenderId": "test",
                    "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:test",
                "awsRegion": "us-east-1",
            }
            for n, m in enumerate(messages)
        ]
    }


def test_one_failing_operation_of_a_batch_leaves_the_others_synced(stack):
    # Given five new invoices of one tenant, one of them with a line whose item QuickBooks never had
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant)
    seed_contact(tenant, "Partial Owner")
    seed_product(tenant, "Service")
    ghost = seed_product(tenant, "Ghost", "p-ghost")
    ghost.update(actions=[Product.qbo_id.set("999999")])
    good = [seed_invoice(tenant).id for _ in range(4)]
    bad = seed_invoice(tenant, lines=[("p1", "1", "80"), ("p-ghost", "1", "10")]).id
    ids = [*good[:2], bad, *good[2:]]
    # When one invocation receives all five (one QuickBooks batch call)
    messages = [
        QboSyncMessage(kind="sync_invoice", tenant_id=tenant, entity_id=i, run_id="run-1", version=1)
        for i in ids
    ]
    result = consumer.handle_event(sqs_event(messages), None)
    # Then every record is consumed: four invoices synced, the fifth in error with QuickBooks' reason
    assert result["batchItemFailures"] == []
    calls = stack.emulator.calls(realm)
    assert calls["batch_requests"] == 1
    invoice_calls = calls["total"] - calls["batch_requests"]
    # the customer (name query, create), the item (name query, income account, create): no invoice
    # went out on its own
    assert invoice_calls <= 5, calls
    for invoice_id in good:
        record = load_invoice(tenant, invoice_id)
        assert record.sync_status == "synced" and record.qbo_id
    failed = load_invoice(tenant, bad)
    assert failed.sync_status == "error"
    assert failed.sync_error.as_dict()["code"] == "2500" and failed.sync_error.as_dict()["message"]
    assert len(ours(stack, realm)) == 4
    # And a redelivery of the whole batch creates nothing more (synced ones are skipped)
    consumer.handle_event(sqs_event(messages[:2] + messages[3:], receive_count=2), None)
    assert len(ours(stack, realm)) == 4


def test_void_contact_and_product_messages(stack):
    # Given a synced invoice, its customer and its item
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant)
    contact = seed_contact(tenant, "Change Owner")
    product = seed_product(tenant, "Weekly service")
    invoice = seed_invoice(tenant)
    send(stack, tenant, invoice.id)
    (synced,) = wait_settled(tenant, [invoice.id])
    assert synced.sync_status == "synced"
    linked = Entity.get(Contact.key(tenant, "c1"), META, consistent_read=True)
    item_id = Entity.get(Product.key(tenant, "p1"), META, consistent_read=True).qbo_id
    # When the contact is renamed and the product repriced here, and their messages are consumed
    contact.update(actions=[Contact.name.set("Changed Owner"), Contact.updated_at.set(now_iso())])
    product.update(
        actions=[Product.default_unit_price.set(Decimal("95.50")), Product.updated_at.set(now_iso())]
    )
    send(stack, tenant, "c1", kind="sync_contact")
    send(stack, tenant, "p1", kind="sync_product")
    # Then QuickBooks' customer and item follow (sparse updates of the linked records)
    wait_for(
        lambda: stack.emulator.entity(realm, "Customer", linked.qbo_id)["DisplayName"] == "Changed Owner",
        timeout=20,
        what="customer renamed",
    )
    wait_for(
        lambda: stack.emulator.entity(realm, "Item", item_id)["UnitPrice"] == Decimal("95.50"),
        timeout=20,
        what="item repriced",
    )
    # When a contact that was never synced has its message consumed, its customer is created
    seed_contact(tenant, "Brand New Owner", "c9")
    send(stack, tenant, "c9", kind="sync_contact")
    created = wait_for(
        lambda: Entity.get(Contact.key(tenant, "c9"), META, consistent_read=True).qbo_id,
        timeout=20,
        what="c9",
    )
    assert stack.emulator.entity(realm, "Customer", created)["DisplayName"] == "Brand New Owner"
    # When the invoice is voided here and its void message is consumed
    lifecycle.void(tenant, invoice.id, "alice", "wrong customer")
    send(stack, tenant, invoice.id, kind="void_invoice")

    def voided() -> bool:
        qbo = stack.emulator.entity(realm, "Invoice", synced.qbo_id)
        return qbo is not None and qbo["TotalAmt"] == 0

    wait_for(voided, timeout=20, what="invoice voided in QuickBooks")
    # Then QuickBooks' invoice is void (the same one: no other was created) and ours records it
    record = wait_for(
        lambda: (r := load_invoice(tenant, invoice.id)).history[-1].reason.startswith("voided") and r,
        timeout=20,
        what="void recorded",
    )
    assert record.qbo_sync_token == stack.emulator.entity(realm, "Invoice", synced.qbo_id)["SyncToken"]
    assert len(stack.emulator.entities(realm, "Invoice")) == 1


def test_a_batch_is_recorded_in_one_transaction_and_an_invoice_edited_meanwhile_is_not_marked_synced(
    stack, monkeypatch
):
    # Given six new invoices of one tenant, and one of them edited here while QuickBooks creates them
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant)
    seed_contact(tenant, "Ledger Owner")
    seed_product(tenant, "Service")
    ids = [seed_invoice(tenant).id for _ in range(6)]
    edited = ids[3]
    original_batch = QboClient.batch

    def batch_then_edit(self, *args, **kwargs):
        answer = original_batch(self, *args, **kwargs)
        load_invoice(tenant, edited).update(actions=[Invoice.version.add(1)])
        return answer

    single_writes: list[str] = []
    original_write = invoice_sync.update_without_reading

    def counting_write(record, actions, condition=None):
        single_writes.append(record.id)
        return original_write(record, actions, condition)

    monkeypatch.setattr(QboClient, "batch", batch_then_edit)
    monkeypatch.setattr(invoice_sync, "update_without_reading", counting_write)
    messages = [
        QboSyncMessage(kind="sync_invoice", tenant_id=tenant, entity_id=i, run_id="run-1", version=1)
        for i in ids
    ]
    # When one invocation receives all six
    result = consumer.handle_event(sqs_event(messages), None)
    # Then QuickBooks holds six invoices and every record is consumed
    assert result["batchItemFailures"] == []
    assert stack.emulator.calls(realm)["batch_requests"] == 1
    assert len(ours(stack, realm)) == 6 == stack.emulator.count(realm, "Invoice")
    # The five unchanged invoices are synced, each with its QuickBooks id and a history entry
    for invoice_id in ids:
        record = load_invoice(tenant, invoice_id)
        assert record.qbo_id, invoice_id
        if invoice_id != edited:
            assert record.sync_status == "synced" and sync_steps(record.history)[-1][1] == "synced"
    # The edited one keeps its QuickBooks id (its next message updates, never creates) but is not
    # "synced": that would hide its newer version
    changed = load_invoice(tenant, edited)
    assert changed.sync_status != "synced" and changed.version == 2
    # With no edit, the batch is one write: a second batch records its invoices without single writes
    monkeypatch.setattr(QboClient, "batch", original_batch)
    more = [seed_invoice(tenant).id for _ in range(5)]
    single_writes.clear()
    consumer.handle_event(
        sqs_event(
            [
                QboSyncMessage(kind="sync_invoice", tenant_id=tenant, entity_id=i, run_id="run-1", version=1)
                for i in more
            ]
        ),
        None,
    )
    assert all(load_invoice(tenant, i).sync_status == "synced" for i in more)
    assert not set(single_writes) & set(more), single_writes


def test_an_invoice_its_producer_marks_pending_while_it_syncs_ends_synced_through_allowed_steps(
    stack, monkeypatch
):
    # Given a new invoice whose message overtook its producer's pending mark (the message is sent
    # first): the producer marks it pending while QuickBooks creates it
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant)
    seed_contact(tenant, "Race Owner")
    seed_product(tenant, "Service")
    invoice_id = seed_invoice(tenant).id
    original_create = QboClient.create

    def create_then_mark_pending(self, entity, body, requestid):
        answer = original_create(self, entity, body, requestid)
        if entity == "Invoice":
            assert invoice_sync.mark_pending(load_invoice(tenant, invoice_id), "billing_run")
        return answer

    monkeypatch.setattr(QboClient, "create", create_then_mark_pending)
    message = QboSyncMessage(
        kind="sync_invoice", tenant_id=tenant, entity_id=invoice_id, run_id="run-1", version=1
    )
    # When the consumer handles its message
    result = consumer.handle_event(sqs_event([message]), None)
    # Then the invoice is synced once, its run index too, and its history holds only steps the
    # sync machine allows (the write was decided again from the status stored meanwhile)
    assert result["batchItemFailures"] == []
    synced = load_invoice(tenant, invoice_id)
    assert synced.sync_status == "synced" and synced.gsi2sk == Invoice.run_sort_key("synced", invoice_id)
    assert len(ours(stack, realm)) == 1
    steps = sync_steps(synced.history)[-2:]
    assert steps == [("not_synced", "pending"), ("pending", "synced")], steps


def test_many_new_customers_are_created_in_batch_calls_and_an_existing_name_is_linked(stack):
    # Given eight invoices for eight contacts QuickBooks has never seen, except one whose name a
    # customer already holds with other spacing (our exact-name query misses it: the create says 6240)
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant)
    seed_product(tenant, "Service")
    contacts = [seed_contact(tenant, f"Batch Customer {n}", f"c{n}") for n in range(8)]
    existing = stack.emulator.user_create(realm, "Customer", {"DisplayName": "Batch   Customer 5"})
    ids = [seed_invoice(tenant, contact_id=c.id).id for c in contacts]
    before = stack.emulator.calls(realm)["total"]
    # When one invocation receives them all
    result = consumer.handle_event(
        sqs_event(
            [
                QboSyncMessage(kind="sync_invoice", tenant_id=tenant, entity_id=i, run_id="run-1", version=1)
                for i in ids
            ]
        ),
        None,
    )
    # Then every invoice is synced, each to its own customer, and no name exists twice
    assert result["batchItemFailures"] == []
    customers = stack.emulator.entities(realm, "Customer")
    names = [" ".join(c["DisplayName"].split()) for c in customers]
    assert len(names) == len(set(names)) == 8
    by_name = dict(zip(names, customers, strict=True))
    for contact, invoice_id in zip(contacts, ids, strict=True):
        linked = Entity.get(Contact.key(tenant, contact.id), META)
        assert linked.qbo_id == by_name[contact.name]["Id"]
        synced = load_invoice(tenant, invoice_id)
        assert synced.sync_status == "synced"
        assert stack.emulator.entity(realm, "Invoice", synced.qbo_id)["CustomerRef"]["value"] == linked.qbo_id
    # The existing customer was linked, not duplicated
    assert by_name["Batch Customer 5"]["Id"] == existing["Id"]
    # And the seven new customers took one batch call, not seven calls: two batch calls in all
    # (customers, invoices) and a handful of single calls (name queries, the item, the 6240 look-ups)
    calls = stack.emulator.calls(realm)
    assert calls["batch_requests"] == 2, calls
    assert calls["total"] - before <= 8, calls


@pytest.fixture
def sync_queue(stack, monkeypatch):
    """A queue of our own as the sync queue, no poller on it: the test reads what the consumer sends."""
    from fieldbill.settings import get_settings

    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=f"handback-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    monkeypatch.setenv("QBO_SYNC_QUEUE_URL", url)
    get_settings.cache_clear()
    yield url
    monkeypatch.undo()
    get_settings.cache_clear()


def receive_copies(url: str, wanted: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(got) < wanted and time.monotonic() < deadline:
        answer = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]
        )
        got.extend(answer.get("Messages", []))
    return got


def as_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Messages received from SQS, as the event source mapping hands them to the function."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m["Attributes"],
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:test",
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


def test_a_message_made_to_wait_is_handed_back_as_a_fresh_copy_that_keeps_its_doubt(
    stack, sync_queue, monkeypatch
):
    # Given a realm cooling down after a 429 (5 real seconds here), one invoice's first delivery and
    # another's second delivery (an earlier attempt may have reached QuickBooks)

    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant)
    seed_contact(tenant, "Waiting Owner")
    seed_product(tenant, "Service")
    fresh, doubtful = seed_invoice(tenant).id, seed_invoice(tenant).id
    RateLimiter().note_throttled(realm, qbo_seconds=300)
    looked_up: list[str] = []
    real_find = sync_invoices.find_invoice

    def find_invoice(tenant_, invoice, body):
        looked_up.append(invoice.id)
        return real_find(tenant_, invoice, body)

    real_find_many = sync_invoices.find_invoices

    def find_invoices(tenant_, pairs):
        looked_up.extend(invoice.id for invoice, _ in pairs)
        return real_find_many(tenant_, pairs)

    monkeypatch.setattr(sync_invoices, "find_invoice", find_invoice)
    monkeypatch.setattr(sync_invoices, "find_invoices", find_invoices)

    def message(invoice_id: str) -> QboSyncMessage:
        return QboSyncMessage(kind="sync_invoice", tenant_id=tenant, entity_id=invoice_id, version=1)

    # When each is delivered while the realm has no budget
    first = consumer.handle_event(sqs_event([message(fresh)]), None)
    second = consumer.handle_event(sqs_event([message(doubtful)], receive_count=2), None)
    # Then the originals are consumed (their wait is not a receive towards the DLQ) and nothing
    # reached QuickBooks
    assert first["batchItemFailures"] == [] and second["batchItemFailures"] == []
    assert ours(stack, realm) == []
    assert load_invoice(tenant, fresh).sync_status != "synced"
    # And a copy of each waits in the queue for the cool-down, first receive, the doubt carried:
    # delayed, not visible at once (SQS delivered it first only once the cool-down was over, which
    # holds however fast the machine reads the queue)
    cooldown = RateLimiter()._cooldown_item(realm)
    assert cooldown is not None and cooldown.expires is not None
    copies = receive_copies(sync_queue, 2)
    assert len(copies) == 2
    assert all(
        int(c["Attributes"]["ApproximateFirstReceiveTimestamp"]) >= cooldown.expires * 1000 - 500
        for c in copies
    )
    by_invoice = {QboSyncMessage.model_validate_json(c["Body"]).entity_id: c for c in copies}
    assert all(c["Attributes"]["ApproximateReceiveCount"] == "1" for c in copies)
    fresh_copy = QboSyncMessage.model_validate_json(by_invoice[fresh]["Body"])
    doubtful_copy = QboSyncMessage.model_validate_json(by_invoice[doubtful]["Body"])
    assert (fresh_copy.attempted, fresh_copy.handbacks) == (False, 1)
    assert (doubtful_copy.attempted, doubtful_copy.handbacks) == (True, 1)
    assert fresh_copy.queued_at_ms and fresh_copy.queued_at_ms <= int(time.time() * 1000)
    # When the copies are delivered after the cool-down
    done = consumer.handle_event(as_event(copies), None)
    # Then both are synced, exactly once, and only the doubtful one was looked up first
    assert done["batchItemFailures"] == []
    assert {load_invoice(tenant, i).sync_status for i in (fresh, doubtful)} == {"synced"}
    assert len(ours(stack, realm)) == 2
    assert looked_up == [doubtful]


def test_a_wait_whose_copy_sqs_refuses_keeps_the_original_message(stack, sync_queue):
    # Given a realm cooling down, and a sync queue that no longer exists (SQS refuses the copy)

    boto3.client("sqs").delete_queue(QueueUrl=sync_queue)
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant)
    seed_contact(tenant, "Kept Owner")
    seed_product(tenant, "Service")
    invoice_id = seed_invoice(tenant).id
    RateLimiter().note_throttled(realm, qbo_seconds=300)
    event = sqs_event(
        [QboSyncMessage(kind="sync_invoice", tenant_id=tenant, entity_id=invoice_id, version=1)]
    )
    # When it is delivered
    result = consumer.handle_event(event, None)
    # Then the original is reported failed: it comes back by itself, never dropped
    assert result["batchItemFailures"] == [{"itemIdentifier": event["Records"][0]["messageId"]}]
    assert ours(stack, realm) == []


def no_batch_slot_for_a_while(monkeypatch) -> None:
    """The realm's batch slots taken for 3 real seconds (tests run a QuickBooks minute a second:
    taking 40 slots for real races the window sliding); every other answer of the limiter is real."""

    real = RateLimiter.estimate

    def estimate(self, realm_id, *, batch=False, spare=False):
        return 3.0 if batch else real(self, realm_id, batch=batch, spare=spare)

    monkeypatch.setattr(RateLimiter, "estimate", estimate)


def three_new_invoices(stack: Any, owner: str) -> tuple[str, str, list[str], list[QboSyncMessage]]:
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant)
    seed_contact(tenant, owner)
    seed_product(tenant, "Service")
    ids = [seed_invoice(tenant).id for _ in range(3)]
    messages = [
        QboSyncMessage(kind="sync_invoice", tenant_id=tenant, entity_id=i, run_id="run-1", version=1)
        for i in ids
    ]
    return tenant, realm, ids, messages


def test_with_the_batch_budget_spent_new_invoices_go_one_by_one_on_spare_requests(stack, monkeypatch):
    # Given a realm whose batch slots are all taken for a while
    tenant, realm, ids, messages = three_new_invoices(stack, "Spare Owner")
    no_batch_slot_for_a_while(monkeypatch)
    # When one invocation receives the three
    result = consumer.handle_event(sqs_event(messages), None)
    # Then they were created one by one (no batch call), each once, all synced at once
    assert result["batchItemFailures"] == []
    assert {load_invoice(tenant, i).sync_status for i in ids} == {"synced"}
    assert stack.emulator.calls(realm)["batch_requests"] == 0
    assert len(ours(stack, realm)) == 3


def test_with_no_spare_request_either_the_invoices_wait_for_a_batch_slot(stack, sync_queue, monkeypatch):
    # Given a realm with no batch slot for a while and spare calls cooling down after a 429 on one

    _, realm, ids, messages = three_new_invoices(stack, "Waiting Spare Owner")
    no_batch_slot_for_a_while(monkeypatch)
    RateLimiter().note_throttled(realm, 300, spare=True)
    # When one invocation receives them
    result = consumer.handle_event(sqs_event(messages), None)
    # Then nothing went to QuickBooks: all three were handed back to wait for the batch slot
    assert result["batchItemFailures"] == []
    assert ours(stack, realm) == []
    copies = receive_copies(sync_queue, 3, timeout=10)
    assert sorted(QboSyncMessage.model_validate_json(c["Body"]).entity_id for c in copies) == sorted(ids)


def test_two_messages_for_the_same_new_invoices_in_different_batches_create_each_once(stack):
    # Given new invoices, some with two messages (a re-queue beside a redelivery after a
    # reconnect) that two invocations handle at the same time, in batches of different make-up
    # (so QuickBooks' batch requestid cannot tell the second create of an invoice from a new one)
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant)
    seed_contact(tenant, "Twice Owner")
    seed_product(tenant, "Service")
    ids = [seed_invoice(tenant).id for _ in range(6)]

    def messages(chosen: list[str]) -> list[QboSyncMessage]:
        return [QboSyncMessage(kind="sync_invoice", tenant_id=tenant, entity_id=i, version=1) for i in chosen]

    deliveries = [messages(ids[:4]), messages(ids[2:])]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def deliver(batch: list[QboSyncMessage]) -> None:
        try:
            start.wait(timeout=10)
            consumer.handle_event(sqs_event(batch), None)
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(batch,)) for batch in deliveries]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    # Then each invoice is in QuickBooks once; a delivery that found one being created comes back
    # later and finds it synced
    for _ in range(3):
        consumer.handle_event(sqs_event(messages(ids), receive_count=2), None)
    markers = Counter(str(q.get("PrivateNote")) for q in stack.emulator.entities(realm, "Invoice"))
    assert sorted(markers.values()) == [1] * len(ids), markers
    assert all(load_invoice(tenant, i).sync_status == "synced" for i in ids)
