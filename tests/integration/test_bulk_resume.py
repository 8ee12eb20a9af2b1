"""A bulk operation redelivered after its worker crashed goes on from what it recorded (wt-life2):
what it recorded stays as recorded and is not done again, and an invoice it handled after its last
record (the command applied, the progress not yet written) counts as done, not refused.

The crash is a BaseException raised once from the per-invoice step, after the command was applied:
like a Lambda killed there, nothing of the worker's own error handling runs (the operation stays
running, the message comes back)."""

from __future__ import annotations

import json
import mailbox
import random
import uuid
from datetime import date
from email import policy
from email.parser import BytesParser
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from fieldbill.domain import model as dm
from fieldbill.store import billing, runs
from fieldbill.store import invoices as invoice_store
from fieldbill.store.models import META, Contact
from fieldbill.workflows.billing import jobs, pages
from fieldbill.workflows.invoices import bulk
from tests.integration.seed import seed_work

pytestmark = pytest.mark.integration

ACTOR = "alice"


class WorkerKilled(BaseException):
    """The worker's process ends here (a timeout, the memory limit): no except Exception runs."""


def _drafts(tenant_id: str, count: int) -> tuple[list[str], dict[str, str]]:
    """`count` draft invoices, one per contact, each contact with its own billing email."""
    seed_work(tenant_id, contacts=count, entries_per_contact=1, rng=random.Random(5), mileage_share=0.0)
    pages.compile_all(tenant_id, ACTOR, pages.Scope(), limit=50)
    pending, _ = billing.pending_items(tenant_id, None, None, None)
    made = pages.generate(
        tenant_id, ACTOR, "r1", dm.GroupingMode.PER_CONTACT, pending, date(2026, 11, 1), dm.Destination.LOCAL
    )
    emails: dict[str, str] = {}
    for invoice_id in made.invoice_ids:
        record = invoice_store.get(tenant_id, invoice_id)
        address = f"ap+{tenant_id}-{record.contact_id}@customer.example.org"
        contact = Contact.get(Contact.key(tenant_id, record.contact_id), META)
        contact.update(actions=[Contact.email.set(address)])
        emails[invoice_id] = address
    return sorted(made.invoice_ids), emails


def _record(tenant_id: str, operation_id: str) -> SQSRecord:
    body = {"kind": "invoices_bulk", "tenant_id": tenant_id, "operation_id": operation_id, "actor": ACTOR}
    return SQSRecord({"messageId": uuid.uuid4().hex, "body": json.dumps(body), "attributes": {}})


def _outbox_to(stack: Any, address: str) -> int:
    box = mailbox.Maildir(stack.outbox, create=False)
    count = 0
    for key in box.iterkeys():
        message = BytesParser(policy=policy.default).parsebytes(box.get_bytes(key))
        count += address in [a.addr_spec for a in message["To"].addresses]
    return count


def _crash_once_after(monkeypatch: pytest.MonkeyPatch, applied: int) -> list[str]:
    """The per-invoice step applies its command, and the `applied`-th time the worker dies there."""
    real, calls = bulk._one, []

    def step(tenant_id: str, actor: str, request: bulk.BulkRequest, invoice_id: str) -> None:
        real(tenant_id, actor, request, invoice_id)
        calls.append(invoice_id)
        if len(calls) == applied:
            raise WorkerKilled(invoice_id)

    monkeypatch.setattr(bulk, "_one", step)
    return calls


TO = {"send": "open", "mark_sent": "open", "delete": "deleted"}


@pytest.mark.parametrize("action", sorted(TO))
def test_a_redelivered_bulk_operation_resumes_and_does_nothing_twice(stack, tenant_id, monkeypatch, action):
    # Given 5 drafts, a bulk operation over them recording its progress every 2 invoices
    ids, emails = _drafts(tenant_id, 5)
    operation = runs.create_operation(
        tenant_id, uuid.uuid4().hex, "invoices_bulk", {"action": action, "invoice_ids": ids}, ACTOR
    )
    monkeypatch.setattr(bulk, "PROGRESS_EVERY", 2)
    calls = _crash_once_after(monkeypatch, 3)
    # When its worker dies after the 3rd invoice (2 recorded done, the 3rd applied, not recorded)
    with pytest.raises(WorkerKilled):
        jobs.handle_record(_record(tenant_id, operation.id))
    crashed = runs.get_operation(tenant_id, operation.id)
    assert crashed.status == "running" and crashed.result.as_dict()["done"] == ids[:2]
    # and the message comes back
    jobs.handle_record(_record(tenant_id, operation.id))
    # Then the operation succeeded, listing each invoice once, done
    ended = runs.get_operation(tenant_id, operation.id)
    result = ended.result.as_dict()
    assert ended.status == "succeeded"
    assert (result["done"], result["refused"], result["processed"], result["total"]) == (ids, [], 5, 5)
    assert "in_hand" not in result
    # and nothing was done twice: the command ran once per invoice, each invoice sent once
    assert calls == ids
    for invoice_id in ids:
        history = invoice_store.get(tenant_id, invoice_id).history
        made = [(h.from_state, h.to_state) for h in history if h.actor == ACTOR and h.from_state == "draft"]
        assert made == [("draft", TO[action])], invoice_id
        assert not [h for h in history if (h.reason or "").startswith("sent again")], invoice_id
        if action == "send":
            assert _outbox_to(stack, emails[invoice_id]) == 1, invoice_id


def test_a_redelivered_bulk_on_a_filter_finds_what_it_changed_though_it_matches_no_more(
    stack, tenant_id, monkeypatch
):
    # Given 5 drafts and "mark sent" on the filter status=draft (a sent invoice leaves the filter)
    ids, _ = _drafts(tenant_id, 5)
    request = {"action": "mark_sent", "filter": {"status": "draft"}}
    operation = runs.create_operation(tenant_id, uuid.uuid4().hex, "invoices_bulk", request, ACTOR)
    monkeypatch.setattr(bulk, "PROGRESS_EVERY", 2)
    calls = _crash_once_after(monkeypatch, 3)
    # When its worker dies after the 3rd invoice, and the message comes back
    with pytest.raises(WorkerKilled):
        jobs.handle_record(_record(tenant_id, operation.id))
    jobs.handle_record(_record(tenant_id, operation.id))
    # Then each invoice is listed once, done: the 3rd too, though the filter no longer finds it
    ended = runs.get_operation(tenant_id, operation.id)
    result = ended.result.as_dict()
    assert ended.status == "succeeded" and "in_hand" not in result
    assert (sorted(result["done"]), result["refused"], result["processed"], result["total"]) == (
        ids,
        [],
        5,
        5,
    )
    assert sorted(calls) == ids and len(calls) == 5
    assert all(invoice_store.get(tenant_id, i).status == "open" for i in ids)


def test_an_invoice_listed_twice_in_a_selection_is_handled_once(stack, tenant_id):
    ids, _ = _drafts(tenant_id, 2)
    request = bulk.BulkRequest(action="delete", invoice_ids=[ids[0], ids[1], ids[0]])
    result = bulk.run(tenant_id, ACTOR, request, lambda partial: None)
    assert (result["done"], result["refused"], result["processed"], result["total"]) == (ids[:2], [], 2, 2)
