"""Issue 14, store/jobs.py on the local DynamoDB: a job invoice, its job and its number are one
transaction; a writer deciding from a stale job loses cleanly and takes no number (no gaps)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from fieldbill.domain import job_accounting as acc
from fieldbill.domain import job_policies as jp
from fieldbill.domain import jobs as dj
from fieldbill.domain import model as dm
from fieldbill.domain.errors import Conflict
from fieldbill.store import catalog, common, numbering
from fieldbill.store import jobs as store
from fieldbill.store.models import Invoice

PRODUCTS = jp.Products(summary="p", deposit="p")


def _job(tenant: str) -> dj.Job:
    catalog.contacts.create(tenant, "test", {"id": "c1", "name": "Printer"})
    item = dj.Invoiceable(
        id="a", kind=dj.InvoiceableKind.ORDER_ITEM, description="A", product_id="p",
        quantity=Decimal("10"), unit_price=Decimal("100"),
    )  # fmt: skip
    job = dj.Job(id="j1", tenant_id=tenant, customer_id="c1", billing_type=dj.BillingType.ORDER_ITEMS,
                 invoiceables=(item,))  # fmt: skip
    store.create(job, "test")
    return job


def _write(tenant: str, invoice_id: str, amount: str, mode: acc.NumberingMode) -> bool:
    record = store.get(tenant, "j1")
    job = store.to_domain(record)
    draft = jp.build(job, jp.PolicyRequest(policy=jp.Policy.DEPOSIT, amount=Decimal(amount)), PRODUCTS)
    line = dm.InvoiceLine(
        line_no=1, item_id=None, line_kind=dm.LineKind.JOB_DEPOSIT, work_date=None, description="d",
        product_id="p", product_name="p", unit=None, quantity=Decimal(1), unit_price=draft.total,
        amount=draft.total,
    )  # fmt: skip
    invoice = dm.Invoice(
        id=invoice_id, tenant_id=tenant, run_id="job-j1", contact_id="c1",
        grouping=dm.GroupingMode.PER_CONTACT,
        group_key="j1", issue_date=date(2026, 12, 3), due_date=date(2026, 12, 3), lines=(line,),
        subtotal=draft.total, total=draft.total, destination=dm.Destination.LOCAL,
    )  # fmt: skip
    return store.write_invoice(
        store.JobInvoiceWrite(
            invoice=invoice, lines_meta=[(None, None)], policy="deposit", invoice_type="partial",
            numbering=mode, requested_number=None, job_before=record, job_after=jp.apply(job, draft),
        ),
        "test",
    )  # fmt: skip


def test_invoice_job_and_number_are_written_together(stack, tenant_id):
    _job(tenant_id)
    assert _write(tenant_id, "inv-1", "100", acc.NumberingMode.AUTOMATIC) is True
    job = store.to_domain(store.get(tenant_id, "j1"))
    assert (job.deposits, job.invoice_count, job.version) == (Decimal("100.00"), 1, 2)
    assert common.get(Invoice, Invoice.key(tenant_id, "inv-1")).number == "1001"
    assert store.job_invoices(tenant_id, "j1")[0].id == "inv-1"
    # a retry of the very same write is recognised, not doubled
    record = common.get(Invoice, Invoice.key(tenant_id, "inv-1"))
    assert record.job_id == "j1" and record.workflow_status == "invoiced"


def test_a_stale_writer_loses_and_takes_no_number(stack, tenant_id):
    _job(tenant_id)
    stale = store.get(tenant_id, "j1")
    assert _write(tenant_id, "inv-1", "100", acc.NumberingMode.AUTOMATIC) is True
    # Given a second writer that decided from the same job version and sequence
    job = store.to_domain(stale)
    draft = jp.build(job, jp.PolicyRequest(policy=jp.Policy.DEPOSIT, amount=Decimal("50")), PRODUCTS)
    line = dm.InvoiceLine(
        line_no=1, item_id=None, line_kind=dm.LineKind.JOB_DEPOSIT, work_date=None, description="d",
        product_id="p", product_name="p", unit=None, quantity=Decimal(1), unit_price=draft.total,
        amount=draft.total,
    )  # fmt: skip
    invoice = dm.Invoice(
        id="inv-2", tenant_id=tenant_id, run_id="job-j1", contact_id="c1",
        grouping=dm.GroupingMode.PER_CONTACT,
        group_key="j1", issue_date=date(2026, 12, 3), due_date=date(2026, 12, 3), lines=(line,),
        subtotal=draft.total, total=draft.total, destination=dm.Destination.LOCAL,
    )  # fmt: skip
    with pytest.raises(Conflict):
        store.write_invoice(
            store.JobInvoiceWrite(
                invoice=invoice, lines_meta=[(None, None)], policy="deposit", invoice_type="partial",
                numbering=acc.NumberingMode.AUTOMATIC, requested_number=None, job_before=stale,
                job_after=jp.apply(job, draft),
            ),
            "test",
        )  # fmt: skip
    # Then nothing of it was written and the next number is still 2
    assert common.find(Invoice, Invoice.key(tenant_id, "inv-2")) is None
    assert numbering.next_number(tenant_id, "invoice") == 1002
    assert store.to_domain(store.get(tenant_id, "j1")).invoice_count == 1
    assert _write(tenant_id, "inv-3", "50", acc.NumberingMode.AUTOMATIC) is True
    assert common.get(Invoice, Invoice.key(tenant_id, "inv-3")).number == "1002"


def test_a_job_with_an_invoice_is_not_deleted(stack, tenant_id):
    _job(tenant_id)
    assert _write(tenant_id, "inv-1", "10", acc.NumberingMode.NONE) is True
    with pytest.raises(Conflict):
        store.delete(store.get(tenant_id, "j1"), "test")
    assert store.get(tenant_id, "j1").id == "j1"


# ---- the journal's posted-date index (issue 14, what was left: item 3)
def _other_invoices(tenant: str, count: int) -> None:
    """Invoices of the tenant's list that are not posted (what the journal must not read)."""
    from fieldbill.store import billing

    line = dm.InvoiceLine(
        line_no=1, item_id=None, line_kind=dm.LineKind.JOB_DEPOSIT, work_date=None,
        description="other work " * 20, product_id="p", product_name="p", unit=None,
        quantity=Decimal(1), unit_price=Decimal("5"), amount=Decimal("5"),
    )  # fmt: skip
    with Invoice.batch_write() as batch:
        for n in range(count):
            invoice = dm.Invoice(
                id=f"other-{n:05d}", tenant_id=tenant, run_id="r1", contact_id="c1",
                grouping=dm.GroupingMode.PER_CONTACT, group_key="g", issue_date=date(2026, 12, 1),
                due_date=date(2026, 12, 31), lines=(line,), subtotal=Decimal("5"), total=Decimal("5"),
                destination=dm.Destination.LOCAL,
            )  # fmt: skip
            batch.save(billing.invoice_record(invoice))


def test_the_journal_reads_a_period_of_posted_invoices_by_key_range_in_one_request(
    stack, tenant_id, monkeypatch
):
    from fieldbill.domain.states import WorkflowStatus
    from local import moto_dynamodb

    _job(tenant_id)
    # Given job invoices posted on four days, one invoiced only, and 1,200 other invoices
    posted = {
        "inv-nov": "2026-11-30",
        "inv-dec1": "2026-12-01",
        "inv-dec31": "2026-12-31",
        "inv-jan": "2027-01-01",
    }
    for invoice_id, day in posted.items():
        assert _write(tenant_id, invoice_id, "10", acc.NumberingMode.NONE) is True
        monkeypatch.setattr(store, "now_iso", lambda day=day: f"{day}T10:00:00.000Z")
        record = store.advance(
            common.get(Invoice, Invoice.key(tenant_id, invoice_id)), WorkflowStatus.POSTED, "test",
            integration=False,
        )  # fmt: skip
        # the index key is set in the write that posts
        assert (record.gsi3pk, record.gsi3sk) == (
            Invoice.posted_key(tenant_id),
            Invoice.posted_sort_key(f"{day}T10:00:00.000Z", invoice_id),
        )
    assert _write(tenant_id, "inv-open", "10", acc.NumberingMode.NONE) is True
    _other_invoices(tenant_id, 1200)

    # When the journal of December is read (the tenant's one-time back-fill of invoices posted
    # before the index, store/backfills.py, done first: its cost is once per tenant, not per read)
    from fieldbill.store import backfills

    backfills.once(tenant_id, backfills.POSTED_INDEX, store.index_posted)
    moto_dynamodb.REQUESTS.clear()
    found = store.posted_in(tenant_id, date(2026, 12, 1), date(2026, 12, 31), {})
    # Then it holds exactly December's posted invoices, read in one request
    assert sorted(r.id for r in found) == ["inv-dec1", "inv-dec31"]
    assert dict(moto_dynamodb.REQUESTS) == {"Query": 1}
    # and the filters still apply (on the posted invoices only)
    moto_dynamodb.REQUESTS.clear()
    assert store.posted_in(tenant_id, None, None, {"job_id": "other"}) == []
    assert [r.id for r in store.posted_in(tenant_id, None, date(2026, 11, 30), {"job_id": "j1"})] == [
        "inv-nov"
    ]
    assert sum(moto_dynamodb.REQUESTS.values()) == 2


# ---- a standalone credit memo (issue 14, what was left: item 2)
def test_a_standalone_credit_memo_lowers_the_account_balance_once_with_its_write(stack, tenant_id):
    from fieldbill.store import account_balances, credit_memos

    _job(tenant_id)
    assert _write(tenant_id, "corr-1", "10", acc.NumberingMode.NONE) is True
    before = account_balances.balance_of(tenant_id, "c1")

    def record(amount: str) -> Invoice:
        return credit_memos.record_standalone(
            tenant_id, "corr-1", credit_id="job-correction-corr-1", amount=Decimal(amount),
            on="2026-12-03", reason="correction", actor="test",
        )  # fmt: skip

    # When it is recorded, and the same again (a retry)
    first = record("50.00")
    again = record("50.00")
    # Then one credit memo, all of it unapplied, and the balance lowered once by its amount
    assert [(c.id, c.applied, c.unapplied) for c in again.credit_memos] == [
        ("job-correction-corr-1", Decimal("0"), Decimal("50.00"))
    ]
    assert first.balance == again.balance and first.status == again.status  # the document's own
    assert account_balances.balance_of(tenant_id, "c1") == before - Decimal("50.00")
    assert credit_memos.unapplied_credits(tenant_id, "c1") == [Decimal("50.00")]
    # The same id with another amount is refused, and changes nothing
    with pytest.raises(Conflict):
        record("40.00")
    assert account_balances.balance_of(tenant_id, "c1") == before - Decimal("50.00")


def test_invoices_posted_before_the_index_existed_are_indexed_once(stack, tenant_id):
    from fieldbill.domain.states import WorkflowStatus

    _job(tenant_id)
    assert _write(tenant_id, "inv-old", "10", acc.NumberingMode.NONE) is True
    store.advance(
        common.get(Invoice, Invoice.key(tenant_id, "inv-old")),
        WorkflowStatus.POSTED,
        "test",
        integration=False,
    )
    # Given an invoice posted before the posted index existed (no index key)
    record = common.get(Invoice, Invoice.key(tenant_id, "inv-old"))
    record.update(actions=[Invoice.gsi3pk.remove(), Invoice.gsi3sk.remove()])
    # When the tenant's posted invoices are indexed (twice: safe to repeat)
    assert store.index_posted(tenant_id) == 1
    assert store.index_posted(tenant_id) == 0
    # Then the journal finds it by its posting time
    found = store.posted_in(tenant_id, date.fromisoformat(record.posted_at[:10]), None, {})
    assert [r.id for r in found] == ["inv-old"]


def test_the_journals_first_read_indexes_what_was_posted_before_the_index(stack, tenant_id):
    """Nothing walks every tenant at deploy time: the journal's first read of a tenant runs the
    back-fill (store/backfills.py), once; later reads cost no more than the query."""
    from fieldbill.domain.states import WorkflowStatus
    from fieldbill.store import backfills
    from local import moto_dynamodb

    _job(tenant_id)
    assert _write(tenant_id, "inv-old", "10", acc.NumberingMode.NONE) is True
    store.advance(
        common.get(Invoice, Invoice.key(tenant_id, "inv-old")),
        WorkflowStatus.POSTED,
        "test",
        integration=False,
    )
    record = common.get(Invoice, Invoice.key(tenant_id, "inv-old"))
    record.update(actions=[Invoice.gsi3pk.remove(), Invoice.gsi3sk.remove()])
    # When the journal is read for the first time
    found = store.posted_in(tenant_id, None, None, {})
    # Then the invoice posted before the index is in it
    assert [r.id for r in found] == ["inv-old"]
    # And the next read runs no back-fill again: the query alone
    moto_dynamodb.REQUESTS.clear()
    assert [r.id for r in store.posted_in(tenant_id, None, None, {})] == ["inv-old"]
    assert dict(moto_dynamodb.REQUESTS) == {"Query": 1}
    # (a fresh process reads the marker once, then knows)
    backfills.forget()
    assert backfills.once(tenant_id, backfills.POSTED_INDEX, store.index_posted) is False
