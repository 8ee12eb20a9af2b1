"""Issue 14: the eight job invoicing policies, their eligibility per job status and their content."""

from __future__ import annotations

import dataclasses
from decimal import Decimal as D

import pytest

from fieldbill.domain import job_policies as jp
from fieldbill.domain import jobs, states
from fieldbill.domain.errors import Conflict, InvalidTransition, ValidationError
from fieldbill.domain.job_policies import Policy, PolicyRequest
from fieldbill.domain.jobs import BillingType, ChargeKind, Invoiceable, InvoiceableKind, Job, JobStatus

PRODUCTS = jp.Products(summary="p-job", deposit="p-deposit")


def _order(item_id: str, qty: str, price: str, **kw) -> Invoiceable:
    return Invoiceable(
        id=item_id,
        kind=InvoiceableKind.ORDER_ITEM,
        description=item_id,
        product_id="p-" + item_id,
        quantity=D(qty),
        unit_price=D(price),
        **kw,
    )


def _charge(item_id: str, kind: ChargeKind, amount: str, category: str = "Press") -> Invoiceable:
    return Invoiceable(
        id=item_id,
        kind=InvoiceableKind.CHARGE,
        description=item_id,
        product_id="p-" + item_id,
        quantity=D(1),
        unit_price=D(amount),
        charge_kind=kind,
        category=category,
    )


def job_1300(status: JobStatus = JobStatus.OPEN) -> Job:
    """Order items 1,000.00 + 250.00, a customer alteration 50.00, a non-billable charge 99.00."""
    return Job(
        id="j1",
        tenant_id="t",
        customer_id="c1",
        billing_type=BillingType.ORDER_ITEMS,
        status=status,
        invoiceables=(
            _order("brochures", "1000", "1.00"),
            _order("posters", "10", "25.00"),
            _charge("alteration", ChargeKind.CUSTOMER_ALTERATION, "50.00", "Alterations"),
            _charge("setup", ChargeKind.NON_BILLABLE, "99.00"),
        ),
    )


def _save(job: Job, request: PolicyRequest) -> tuple[Job, jp.JobInvoiceDraft]:
    draft = jp.build(job, request, PRODUCTS)
    return jp.apply(job, draft), draft


# ---------------------------------------------------------------------------- price
def test_suggested_price_follows_the_billing_type():
    job = job_1300()
    assert jobs.summarize(job).suggested_price == D("1300.00")
    production = dataclasses.replace(
        job,
        billing_type=BillingType.PRODUCTION_CHARGES,
        invoiceables=(*job.invoiceables, _charge("plates", ChargeKind.BILLABLE, "120.00")),
    )
    # Production charges: billable + customer alteration; order items and non-billable are out.
    assert jobs.summarize(production).suggested_price == D("170.00")


def test_charge_price_comes_from_the_price_structure():
    assert jobs.charge_unit_price("p", D("9"), {"p": D("12.5")}, D("10")) == D("12.500000")
    assert jobs.charge_unit_price("p", D("9"), {}, D("10")) == D("10.000000")
    assert jobs.charge_unit_price("p", D("9"), None, None) == D("9.000000")
    with pytest.raises(ValidationError):
        jobs.charge_unit_price("p", None, None, None)


# ---------------------------------------------------------------------------- eligibility
ALLOWED = {
    Policy.DEPOSIT: {JobStatus.OPEN, JobStatus.CLOSED},
    Policy.PROGRESS_SUMMARY: {JobStatus.OPEN, JobStatus.CLOSED},
    Policy.PROGRESS_ITEMIZED: {JobStatus.OPEN, JobStatus.CLOSED},
    Policy.PROGRESS_ITEMIZED_GROUPED: {JobStatus.OPEN, JobStatus.CLOSED},
    Policy.COMPLETE: {JobStatus.CLOSED},
    Policy.COMPLETE_GROUPED: {JobStatus.CLOSED},
    Policy.CORRECTION: {JobStatus.BILLED},
    Policy.CORRECTION_GROUPED: {JobStatus.BILLED},
}


@pytest.mark.parametrize(
    ("policy", "status"),
    [(p, s) for p in Policy for s in JobStatus if s not in ALLOWED[p]],
)
def test_every_policy_is_refused_where_the_seed_forbids_it(policy: Policy, status: JobStatus):
    with pytest.raises(jp.PolicyRefused) as refused:
        jp.build(job_1300(status), PolicyRequest(policy=policy, amount=D("10")), PRODUCTS)
    assert (refused.value.machine, refused.value.from_status, refused.value.to_status) == (
        "job_invoice_policy",
        str(status),
        str(policy),
    )
    assert isinstance(refused.value, InvalidTransition)  # answered 409 by the one error table


@pytest.mark.parametrize(("policy", "status"), [(p, s) for p in Policy for s in ALLOWED[p]])
def test_every_policy_is_eligible_where_the_seed_allows_it(policy: Policy, status: JobStatus):
    jp.check_eligible(job_1300(status), policy)
    assert (
        jp.INVOICE_TYPE[policy]
        is {
            "deposit": jp.InvoiceType.PARTIAL,
            "progress": jp.InvoiceType.PARTIAL,
            "complete": jp.InvoiceType.COMPLETE,
            "correction": jp.InvoiceType.CORRECTION,
        }[policy.value.split("_")[0]]
    )


# ---------------------------------------------------------------------------- content
def test_deposit_progress_complete_correction_add_up_to_the_final_price():
    job, deposit = _save(job_1300(), PolicyRequest(policy=Policy.DEPOSIT, amount=D("400.00")))
    assert [(ln.kind, ln.amount) for ln in deposit.lines] == [(jp.JobLineKind.DEPOSIT, D("400.00"))]
    assert jobs.summarize(job).remaining == D("900.00")
    job, progress = _save(job, PolicyRequest(policy=Policy.PROGRESS_SUMMARY, amount=D("260.00")))
    assert len(progress.lines) == 1 and progress.total == D("260.00")
    assert sum(progress.billed.values()) == D("260.00")  # spread over the invoiceables, pro rata
    job = dataclasses.replace(job, status=JobStatus.CLOSED)
    job, complete = _save(job, PolicyRequest(policy=Policy.COMPLETE))
    assert complete.total == D("640.00")  # 1,300 - 260 - 400 deposit netted
    assert complete.lines[-1].amount == D("-400.00")
    assert job.status is JobStatus.BILLED and jobs.summarize(job).remaining == 0
    job, correction = _save(job, PolicyRequest(policy=Policy.CORRECTION, items={"posters": D("-50.00")}))
    assert correction.total == D("-50.00")
    total = deposit.total + progress.total + complete.total + correction.total
    assert total == jobs.summarize(job).suggested_price == D("1250.00")


def test_itemized_and_grouped_lines():
    job = job_1300()
    _, itemized = _save(job, PolicyRequest(policy=Policy.PROGRESS_ITEMIZED, items={"posters": D("100")}))
    assert [(ln.invoiceable_id, ln.amount) for ln in itemized.lines] == [("posters", D("100.00"))]
    _, grouped = _save(job, PolicyRequest(policy=Policy.PROGRESS_ITEMIZED_GROUPED, percent=D("50")))
    assert [(ln.description, ln.amount) for ln in grouped.lines] == [
        ("Order items", D("625.00")),
        ("Alterations", D("25.00")),
    ]
    closed = dataclasses.replace(job, status=JobStatus.CLOSED)
    _, final = _save(closed, PolicyRequest(policy=Policy.COMPLETE_GROUPED))
    assert [ln.category for ln in final.lines] == ["Order items", "Alterations"]


def test_a_partial_invoice_never_exceeds_what_is_left():
    job, _ = _save(job_1300(), PolicyRequest(policy=Policy.DEPOSIT, amount=D("400.00")))
    with pytest.raises(ValidationError):
        jp.build(job, PolicyRequest(policy=Policy.PROGRESS_SUMMARY, amount=D("1000.00")), PRODUCTS)
    # ... unless the deposit is netted on it
    draft = jp.build(
        job,
        PolicyRequest(policy=Policy.PROGRESS_SUMMARY, amount=D("1000.00"), apply_deposits=D("100")),
        PRODUCTS,
    )
    assert draft.total == D("900.00")
    with pytest.raises(ValidationError):
        jp.build(job, PolicyRequest(policy=Policy.DEPOSIT, amount=D("900.01")), PRODUCTS)
    with pytest.raises(ValidationError):
        jp.build(
            job, PolicyRequest(policy=Policy.PROGRESS_ITEMIZED, items={"posters": D("250.01")}), PRODUCTS
        )
    with pytest.raises(ValidationError):  # never invoiced
        jp.build(job, PolicyRequest(policy=Policy.PROGRESS_ITEMIZED, items={"setup": D("1")}), PRODUCTS)


def test_a_correction_cannot_credit_below_zero():
    job = dataclasses.replace(job_1300(), status=JobStatus.CLOSED)
    job, _ = _save(job, PolicyRequest(policy=Policy.COMPLETE))
    with pytest.raises(ValidationError):
        jp.build(job, PolicyRequest(policy=Policy.CORRECTION, items={"posters": D("-250.01")}), PRODUCTS)
    job, credit = _save(
        job, PolicyRequest(policy=Policy.CORRECTION_GROUPED, categories={"Order items": D("-125")})
    )
    assert [(ln.category, ln.amount) for ln in credit.lines] == [("Order items", D("-125.00"))]
    assert jobs.summarize(job).suggested_price == D("1175.00")


# ---------------------------------------------------------------------------- job rules
def test_invoiced_invoiceables_are_locked_and_closed_jobs_take_no_charges():
    job, _ = _save(job_1300(), PolicyRequest(policy=Policy.PROGRESS_ITEMIZED, items={"posters": D("10")}))
    with pytest.raises(Conflict):
        jobs.replace_invoiceable(job, _order("posters", "1", "1"))
    with pytest.raises(Conflict):
        jobs.remove_invoiceable(job, "posters")
    with pytest.raises(Conflict):
        jobs.check_deletable(job)
    jobs.remove_invoiceable(job, "brochures")  # not invoiced yet
    closed = dataclasses.replace(job, status=JobStatus.CLOSED)
    with pytest.raises(Conflict):
        jobs.add_invoiceable(closed, _charge("late", ChargeKind.BILLABLE, "5"))
    billed = dataclasses.replace(job, status=JobStatus.BILLED)
    with pytest.raises(Conflict):
        jobs.remove_invoiceable(billed, "brochures")


def test_open_deposits_stay_covered():
    job, _ = _save(job_1300(), PolicyRequest(policy=Policy.DEPOSIT, amount=D("1200.00")))
    with pytest.raises(Conflict):
        jobs.remove_invoiceable(job, "posters")  # 1,050 left to bill < 1,200 deposited


def test_job_machine_and_the_accounting_workflow():
    assert states.JOB_MACHINE.can(JobStatus.CLOSED, JobStatus.OPEN)  # reopen
    with pytest.raises(InvalidTransition):
        states.JOB_MACHINE.check("j", JobStatus.BILLED, JobStatus.OPEN)
    w = states.WorkflowStatus
    states.accounting_step(w.INVOICED, w.POSTED, integration=False)
    with pytest.raises(InvalidTransition):
        states.accounting_step(w.INVOICED, w.POSTED, integration=True)
    with pytest.raises(InvalidTransition):
        states.accounting_step(w.INVOICED, w.APPROVED, integration=False)
    states.accounting_step(w.APPROVED, w.EXPORTED, integration=True)
    with pytest.raises(InvalidTransition):
        states.accounting_step(w.POSTED, w.INVOICED, integration=True)


def test_allocation_is_exact_and_capped():
    shares = jobs.allocate(D("0.10"), [("a", D("1")), ("b", D("1")), ("c", D("1"))])
    assert sum(shares.values()) == D("0.10") and max(shares.values()) == D("0.04")
    assert jobs.allocate(D("-3"), [("a", D("1")), ("b", D("2"))]) == {"a": D("-1"), "b": D("-2")}
