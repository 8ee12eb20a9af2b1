"""Bill once, proven against the local DynamoDB (moto), through the real store and workflows."""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from datetime import date
from decimal import Decimal

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fieldbill.domain import model as dm
from fieldbill.domain.compile import line_kinds_for
from fieldbill.store import billing as billing_store
from fieldbill.store.models import BillableItem, Entity, Invoice
from fieldbill.workflows.billing import pages as billing
from fieldbill.workflows.messages import JobMessage
from tests.conftest import wait_for
from tests.integration.seed import entries_of, seed_work

ISSUE = date(2026, 11, 1)


def _items(tenant: str, status: str | None = None) -> list[BillableItem]:
    statuses = [status] if status else ["pending", "invoiced"]
    out: list[BillableItem] = []
    for s in statuses:
        out += [
            i for i in Entity.gsi1.query(BillableItem.status_key(tenant, s)) if isinstance(i, BillableItem)
        ]
    return out


def _expected_item_ids(tenant: str, seeded) -> set[str]:
    ids = set()
    for record in entries_of(tenant, seeded):
        for kind in line_kinds_for(billing_store.entry_to_domain(record)):
            ids.add(f"{record.id}.{kind}")
    return ids


def _compile_all(tenant: str, actor: str, limit: int = 50) -> None:
    billing.compile_all(tenant, actor, billing.Scope(), limit=limit)


def _assert_billed_once(tenant: str, seeded) -> None:
    entries = entries_of(tenant, seeded)
    assert all(e.billed for e in entries)
    assert not any(e.gsi2pk for e in entries), "a billed entry is still in the unbilled index"
    items = _items(tenant)
    ids = [i.id for i in items]
    assert len(ids) == len(set(ids))
    assert set(ids) == _expected_item_ids(tenant, seeded)


def test_two_compiles_started_together_bill_every_entry_exactly_once(stack, tenant_id):
    # Given 40 contacts with 5 entries each
    seeded = seed_work(tenant_id, contacts=40, entries_per_contact=5)
    # When two compiles run at the same time over the same entries, in small pages
    errors: list[BaseException] = []

    def compile_all(actor: str) -> None:
        try:
            _compile_all(tenant_id, actor, limit=37)
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=compile_all, args=(f"run:{n}",)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then nothing failed and every entry was billed exactly once
    assert not errors
    _assert_billed_once(tenant_id, seeded)
    billed_by = Counter(e.billed_by for e in entries_of(tenant_id, seeded))
    assert sum(billed_by.values()) == 200


def test_a_compile_that_crashes_half_way_and_is_retried_bills_each_entry_once(stack, tenant_id, monkeypatch):
    # Given entries and a compile whose second transaction dies (a Lambda timeout, say)
    seeded = seed_work(tenant_id, contacts=30, entries_per_contact=4)
    real = billing_store._transact
    calls = {"n": 0}

    def crash_on_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise TimeoutError("Lambda timed out")
        return real(*args, **kwargs)

    monkeypatch.setattr(billing_store, "_transact", crash_on_second)
    with pytest.raises(TimeoutError):
        _compile_all(tenant_id, "run:crashed")
    partly = [e for e in entries_of(tenant_id, seeded) if e.billed]
    assert 0 < len(partly) < 120
    # When the step is retried from the start
    monkeypatch.setattr(billing_store, "_transact", real)
    _compile_all(tenant_id, "run:retry")
    # Then every entry is billed exactly once
    _assert_billed_once(tenant_id, seeded)


def test_a_duplicated_compile_message_bills_each_entry_once(stack, tenant_id):
    # Given a compile operation whose queue message is delivered twice
    seeded = seed_work(tenant_id, contacts=10, entries_per_contact=3)
    from fieldbill.workflows.billing import jobs

    operation = jobs.submit("compile", tenant_id, "user:test", jobs.CompileRequest())
    body = JobMessage(kind="compile", tenant_id=tenant_id, operation_id=operation.id, actor="user:test")
    boto3.client("sqs").send_message(
        QueueUrl=stack.aws.environment["JOBS_QUEUE_URL"], MessageBody=body.model_dump_json()
    )
    # When the consumer has taken both
    stack.aws.drain(timeout=60)
    wait_for(lambda: jobs.get_operation(tenant_id, operation.id).status == "succeeded", what="operation")
    # Then every entry is billed once
    _assert_billed_once(tenant_id, seeded)


def test_two_generates_racing_for_the_same_items_never_put_an_item_on_two_invoices(stack, tenant_id):
    # Given compiled pending items for 12 contacts
    seed_work(tenant_id, contacts=12, entries_per_contact=4)
    _compile_all(tenant_id, "run:compile")
    pending = _items(tenant_id, "pending")
    # When two generates (different runs, so different invoice ids) race over the same items
    results = {}

    def generate(run: str) -> None:
        results[run] = billing.generate(
            tenant_id, f"run:{run}", run, dm.GroupingMode.PER_CONTACT, pending, ISSUE
        )

    threads = [threading.Thread(target=generate, args=(f"r{n}",)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then each item is on exactly one invoice, and the invoice lines are exactly the items
    invoices = [i for i in Entity.gsi1.query(Invoice.list_key(tenant_id)) if isinstance(i, Invoice)]
    on_invoices = Counter(item_id for inv in invoices for item_id in inv.item_ids)
    assert set(on_invoices) == {i.id for i in pending}
    assert max(on_invoices.values()) == 1
    for item in _items(tenant_id):
        assert item.status == "invoiced"
        assert item.invoice_id in {inv.id for inv in invoices}
    assert sum(r.items_invoiced for r in results.values()) == len(pending)


def test_a_retried_generate_writes_the_same_invoices_once(stack, tenant_id):
    seed_work(tenant_id, contacts=3, entries_per_contact=3)
    _compile_all(tenant_id, "run:compile")
    pending = _items(tenant_id, "pending")
    first = billing.generate(tenant_id, "run:g", "g1", dm.GroupingMode.PER_CONTACT, pending, ISSUE)
    # When the same generate is retried with the records it read before (as a retried step would)
    again = billing.generate(tenant_id, "run:g", "g1", dm.GroupingMode.PER_CONTACT, pending, ISSUE)
    invoices = [i for i in Entity.gsi1.query(Invoice.list_key(tenant_id)) if isinstance(i, Invoice)]
    assert len(invoices) == len(first.invoice_ids) == 3
    assert again.items_invoiced == 0 or set(again.invoice_ids) <= set(first.invoice_ids)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    contacts=st.integers(1, 4),
    per_contact=st.integers(1, 4),
    seed=st.integers(0, 10_000),
    grouping=st.sampled_from(list(dm.GroupingMode)),
)
def test_property_items_are_conserved_from_entries_to_invoice_lines(
    stack, contacts, per_contact, seed, grouping
):
    # Given random work for a fresh tenant
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    seeded = seed_work(
        tenant, contacts=contacts, entries_per_contact=per_contact, rng=random.Random(seed), mileage_share=0.5
    )
    # When it is compiled and invoiced
    _compile_all(tenant, "run:prop", limit=7)
    pending = _items(tenant, "pending")
    result = billing.generate(tenant, "run:prop", "prop", grouping, pending, ISSUE)
    # Then every eligible entry is accounted for exactly once
    _assert_billed_once(tenant, seeded)
    # and the amounts of the run's billable items equal the sum of its invoice lines and totals
    invoices = [i for i in Entity.gsi1.query(Invoice.list_key(tenant)) if isinstance(i, Invoice)]
    assert {i.id for i in invoices} == set(result.invoice_ids)
    item_total = sum((i.amount for i in _items(tenant)), Decimal(0))
    line_total = sum((ln.amount for inv in invoices for ln in inv.lines), Decimal(0))
    assert item_total == line_total == sum((inv.total for inv in invoices), Decimal(0))
    assert sorted(ln.item_id for inv in invoices for ln in inv.lines) == sorted(i.id for i in _items(tenant))


def test_an_entry_edited_between_compile_read_and_write_is_billed_with_its_new_values(
    stack, tenant_id, monkeypatch
):
    # Given entries, and an edit to one of them landing after compile read it
    seeded = seed_work(tenant_id, contacts=2, entries_per_contact=3, mileage_share=0.0)
    victim = entries_of(tenant_id, seeded)[0]
    real = billing_store.load_compile_context

    def load_then_edit(tenant, entries):
        context = real(tenant, entries)
        fresh = next(e for e in entries_of(tenant_id, seeded) if e.id == victim.id)
        fresh.update(
            actions=[
                billing_store.TaskEntry.description.set("edited"),
                billing_store.TaskEntry.updated_at.set("2026-11-22T00:00:00.000Z"),
            ]
        )
        return context

    monkeypatch.setattr(billing_store, "load_compile_context", load_then_edit)
    first = billing.compile_page(tenant_id, "run:a", billing.Scope())
    monkeypatch.setattr(billing_store, "load_compile_context", real)
    # Then the edited entry was not billed with the values read before the edit
    assert first.entries_skipped == 1
    assert victim.id not in {i.split(".")[0] for i in first.item_ids}
    # and the next compile bills it, with the edit
    second = billing.compile_page(tenant_id, "run:b", billing.Scope())
    assert second.entries_billed == 1
    item = next(i for i in _items(tenant_id) if i.entry_id == victim.id)
    assert item.description.startswith("edited")
    _assert_billed_once(tenant_id, seeded)
