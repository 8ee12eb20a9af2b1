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
