"""Issue 14, proven over random jobs and random sequences of allowed invoices (hypothesis):
the sum of a job's invoices equals its final price, after Complete nothing is unbilled or
undeposited, and no invoiceable is ever billed beyond 100 %."""

from __future__ import annotations

import dataclasses
from decimal import Decimal as D

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fieldbill.domain import job_policies as jp
from fieldbill.domain import jobs
from fieldbill.domain.errors import ValidationError
from fieldbill.domain.job_policies import Policy, PolicyRequest
from fieldbill.domain.jobs import BillingType, ChargeKind, Invoiceable, InvoiceableKind, Job, JobStatus

PRODUCTS = jp.Products(summary="p-job", deposit="p-deposit")
money = st.decimals(min_value=D("0"), max_value=D("5000"), places=2)
fraction = st.decimals(min_value=D("0.01"), max_value=D("1"), places=2)


@st.composite
def invoiceables(draw: st.DrawFn, n: int) -> Invoiceable:
    kind = draw(st.sampled_from([InvoiceableKind.ORDER_ITEM, InvoiceableKind.CHARGE]))
    return Invoiceable(
        id=f"i{n}",
        kind=kind,
        description=f"item {n}",
        product_id=f"p{n}",
        quantity=draw(st.decimals(min_value=D("0"), max_value=D("500"), places=3)),
        unit_price=draw(st.decimals(min_value=D("0"), max_value=D("99"), places=4)),
        charge_kind=draw(st.sampled_from(list(ChargeKind))) if kind is InvoiceableKind.CHARGE else None,
        category=draw(st.sampled_from(["Press", "Bindery", "Alterations"]))
        if kind is InvoiceableKind.CHARGE
        else jobs.ORDER_ITEMS_CATEGORY,
    )


@st.composite
def random_jobs(draw: st.DrawFn) -> Job:
    count = draw(st.integers(min_value=1, max_value=8))
    return Job(
        id="j",
        tenant_id="t",
        customer_id="c",
        billing_type=draw(st.sampled_from(list(BillingType))),
        invoiceables=tuple(draw(invoiceables(n)) for n in range(count)),
    )


def _request(draw: st.DrawFn, job: Job) -> PolicyRequest:
    left = jobs.summarize(job).remaining
    policies = [p for p in Policy if job.status in jp.ELIGIBLE[p]]
    policy = draw(st.sampled_from(policies))
    part = draw(fraction)
    if policy is Policy.DEPOSIT:
        return PolicyRequest(policy=policy, amount=max(D("0.01"), (left * part).quantize(D("0.01"))))
    if policy in (Policy.COMPLETE, Policy.COMPLETE_GROUPED):
        return PolicyRequest(policy=policy)
    if policy in (Policy.CORRECTION, Policy.CORRECTION_GROUPED):
        price = jobs.summarize(job).suggested_price
        signed = draw(st.sampled_from([D(-1), D(1)])) * max(D("0.01"), (price * part).quantize(D("0.01")))
        return (
            PolicyRequest(policy=policy, amount=signed)
            if policy is Policy.CORRECTION
            else PolicyRequest(
                policy=policy,
                categories={job.counted()[0].category: signed} if job.counted() else {"x": signed},
            )
        )
    apply = draw(st.sampled_from([None, job.open_deposits]))
    if draw(st.booleans()):
        return PolicyRequest(policy=policy, percent=part * 100, apply_deposits=apply or None)
    return PolicyRequest(
        policy=policy, amount=max(D("0.01"), (left * part).quantize(D("0.01"))), apply_deposits=apply or None
    )


def _invariants(job: Job) -> None:
    for item in job.invoiceables:
        price = item.price(job.billing_type)
        assert 0 <= item.billed <= price, item  # never billed beyond 100 %
    assert 0 <= job.deposits_applied <= job.deposits
    assert jobs.summarize(job).remaining >= 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(job=random_jobs(), data=st.data())
def test_a_jobs_invoices_add_up_to_its_final_price(job: Job, data: st.DataObject):
    totals: list[D] = []
    for _ in range(data.draw(st.integers(min_value=0, max_value=12))):
        step = data.draw(st.sampled_from(["invoice", "invoice", "invoice", "close", "reopen"]))
        if step == "close" and job.status is JobStatus.OPEN:
            job = dataclasses.replace(job, status=JobStatus.CLOSED)
        elif step == "reopen" and job.status is JobStatus.CLOSED:
            job = dataclasses.replace(job, status=JobStatus.OPEN)
        elif step == "invoice":
            try:
                draft = jp.build(job, _request(data.draw, job), PRODUCTS)
            except ValidationError:
                continue  # refused, nothing changes
            job = jp.apply(job, draft)
            totals.append(draft.total)
        _invariants(job)
    if job.status is not JobStatus.BILLED:
        job = dataclasses.replace(job, status=JobStatus.CLOSED)
        final = jp.build(job, PolicyRequest(policy=Policy.COMPLETE), PRODUCTS)
        job = jp.apply(job, final)
        totals.append(final.total)
        assert final.total >= 0
    _invariants(job)
    summary = jobs.summarize(job)
    # After Complete nothing is unbilled or undeposited ...
    assert summary.remaining == 0 and summary.open_deposits == 0
    assert all(i.billed == i.price(job.billing_type) for i in job.invoiceables)
    # ... and every invoice together is the final price (corrections included).
    assert sum(totals, D("0")) == summary.suggested_price
    assert job.invoice_count == len(totals)


@given(
    amount=st.decimals(min_value=D("-10000"), max_value=D("10000"), places=2),
    caps=st.lists(money, min_size=1, max_size=10),
)
def test_allocation_spends_exactly_the_amount_within_each_cap(amount: D, caps: list[D]):
    named = [(f"k{n}", c) for n, c in enumerate(caps)]
    if abs(amount) > sum(caps):
        return
    shares = jobs.allocate(amount, named)
    assert sum(shares.values(), D("0")) == amount
    for key, cap in named:
        assert abs(shares.get(key, D("0"))) <= cap
