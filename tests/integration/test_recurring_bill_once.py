"""Recurring billing against the local DynamoDB (issue 16): exactly one invoice per (profile,
period, account) whether the run is repeated, run twice at once or retried after a crash; the
commit writes what the preview showed; the balance is brought forward, never added; account
balances follow the invoices that change them."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import date
from decimal import Decimal

import pytest

from fieldbill.domain import recurring
from fieldbill.domain.model import Destination
from fieldbill.store import account_balances, invoices
from fieldbill.store import recurring as store
from fieldbill.store.models import META, Contact, Entity, Invoice, Product
from fieldbill.workflows.recurring import drafts, regenerate

ACTOR = "user:test"
PROFILE = "bp-res"
PERIOD = "2026-11"


def _seed(tenant: str, accounts: int, *, with_service: int | None = None, rate: str = "90.00") -> list[str]:
    """`accounts` contacts on one monthly profile; the first `with_service` have a service."""
    store.create_profile(
        tenant,
        recurring.BillProfile(
            id=PROFILE, name="Residential", cadence=recurring.Cadence.MONTHLY, start_date=date(2026, 1, 1)
        ),
        ACTOR,
    )
    Product(
        Product.key(tenant, "p-cart"),
        META,
        tenant_id=tenant,
        id="p-cart",
        gsi1pk=Product.list_key(tenant),
        gsi1sk="cart#p-cart",
        name="Cart pickup",
    ).save()
    ids = []
    with Entity.batch_write() as batch:
        for n in range(accounts):
            contact_id = f"c{n:04d}"
            ids.append(contact_id)
            batch.save(
                Contact(
                    Contact.key(tenant, contact_id),
                    META,
                    tenant_id=tenant,
                    id=contact_id,
                    gsi1pk=Contact.list_key(tenant),
                    gsi1sk=f"customer {n}#{contact_id}",
                    name=f"Customer {n}",
                    bill_profile_id=PROFILE,
                )
            )
    served = accounts if with_service is None else with_service
    for contact_id in ids[:served]:
        _service(tenant, contact_id, rate)
    return ids


def _service(tenant: str, contact_id: str, rate: str, service_id: str | None = None) -> None:
    store.create_service(
        tenant,
        recurring.RecurringService(
            id=service_id or f"s-{contact_id}",
            contact_id=contact_id,
            name="Weekly cart pickup",
            product_id="p-cart",
            product_name="Cart pickup",
            rate=Decimal(rate),
            basis=recurring.RateBasis.PERIOD,
            start_date=date(2026, 1, 1),
        ),
        ACTOR,
    )


def _request(**kw) -> drafts.DraftsRequest:
    values = {"bill_profile_id": PROFILE, "period": PERIOD, "destination": Destination.LOCAL, **kw}
    return drafts.DraftsRequest(**values)


def _commit(tenant: str, **kw) -> dict:
    result, more = drafts.commit(tenant, ACTOR, _request(**kw), lambda _partial: None)
    assert more is None
    return result


def _invoices(tenant: str) -> list[Invoice]:
    return [r for r in Entity.gsi1.query(Invoice.list_key(tenant)) if isinstance(r, Invoice)]


def _one_per_account(tenant: str, accounts: list[str]) -> None:
    per_account = Counter(r.contact_id for r in _invoices(tenant) if r.period_key == PERIOD)
    assert per_account == Counter(accounts)


def test_the_same_period_run_twice_creates_each_invoice_once(stack, tenant_id):
    accounts = _seed(tenant_id, 30)
    first = _commit(tenant_id)
    second = _commit(tenant_id)
    assert first["counts"]["created"] == 30
    assert second["counts"] == {**second["counts"], "created": 0, "exists": 30}
    _one_per_account(tenant_id, accounts)


def test_two_runs_at_once_create_each_invoice_once(stack, tenant_id):
    accounts = _seed(tenant_id, 40)
    results: list[dict] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(_commit(tenant_id))
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    _one_per_account(tenant_id, accounts)
    created = sum(r["counts"]["created"] for r in results)
    assert created == 40
    # Every recurring charge exists once and is on its account's invoice.
    for record in _invoices(tenant_id):
        assert record.item_ids == [f"s-{record.contact_id}.{PERIOD}"]


def test_a_run_that_crashes_half_way_and_is_retried_creates_each_invoice_once(stack, tenant_id, monkeypatch):
    accounts = _seed(tenant_id, 20)
    real = store.write_period_invoice
    calls = {"n": 0}

    def crashing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 8:
            raise RuntimeError("the Lambda died here")
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "write_period_invoice", crashing)
    with pytest.raises(RuntimeError):
        _commit(tenant_id)
    assert len(_invoices(tenant_id)) == 7
    monkeypatch.setattr(store, "write_period_invoice", real)
    retried = _commit(tenant_id)
    assert (retried["counts"]["created"], retried["counts"]["exists"]) == (13, 7)
    _one_per_account(tenant_id, accounts)


def test_a_commit_out_of_time_goes_on_from_its_progress(stack, tenant_id):
    accounts = _seed(tenant_id, 6)
    result, more = drafts.commit(tenant_id, ACTOR, _request(), lambda _p: None, budget=0.0)
    assert more == accounts[0] and result["counts"]["created"] == 1
    # An account joining the profile meanwhile, sorting right after the last one written
    Contact(
        Contact.key(tenant_id, "c00000"),
        META,
        tenant_id=tenant_id,
        id="c00000",
        gsi1pk=Contact.list_key(tenant_id),
        gsi1sk="late#c00000",
        name="Late",
        bill_profile_id=PROFILE,
    ).save()
    _service(tenant_id, "c00000", "10.00")
    accounts.append("c00000")
    _rest, done = drafts.commit(tenant_id, ACTOR, _request(start_after=more), lambda _p: None, budget=0.0)
    while done is not None:
        _rest, done = drafts.commit(tenant_id, ACTOR, _request(start_after=done), lambda _p: None, budget=0.0)
    _one_per_account(tenant_id, accounts)


def test_commit_writes_what_the_preview_showed_and_a_stale_preview_writes_nothing(stack, tenant_id):
    accounts = _seed(tenant_id, 5, with_service=3)
    shown = drafts.preview(tenant_id, _request())
    # When the data changes after the preview, a commit of that preview is refused and says who
    _service(tenant_id, accounts[4], "15.00")
    stale = _commit(tenant_id, preview_fingerprint=shown.fingerprint)
    assert stale["stale"] is True and stale["changed"]["changed"] == [accounts[4]]
    # and which input: a service, not the balance or the run's invoice date
    assert (stale["changed"]["why"], stale["changed"]["run"]) == ({accounts[4]: ["services"]}, [])
    # A commit of that preview with another invoice date names the date, once
    redated = _commit(tenant_id, preview_fingerprint=shown.fingerprint, invoice_date=date(2026, 11, 20))
    assert redated["stale"] is True and redated["changed"]["run"] == ["invoice_date"]
    assert _invoices(tenant_id) == []
    # A fresh preview, committed, is exactly what was written
    shown = drafts.preview(tenant_id, _request())
    done = _commit(tenant_id, preview_fingerprint=shown.fingerprint)
    assert done["stale"] is False and done["counts"]["created"] == 5
    written = {r.contact_id: r for r in _invoices(tenant_id)}
    for plan in shown.accounts:
        record = written[plan.contact_id]
        assert plan.invoice is not None
        assert record.id == plan.invoice_id
        assert Decimal(record.total) == plan.total
        assert [str(i) for i in record.item_ids] == list(plan.invoice.item_ids)
        assert [ln.amount for ln in record.lines] == [ln.amount for ln in plan.invoice.lines]


def test_balance_is_brought_forward_not_added_and_zero_invoices_follow_skip_zero(stack, tenant_id):
    served, owing, idle = _seed(tenant_id, 3, with_service=1)
    # Given `owing` has an open invoice of an earlier period for 40.00
    _service(tenant_id, owing, "40.00", service_id="s-old")
    store.end_service(tenant_id, "s-old", date(2026, 10, 31), ACTOR)
    drafts.commit(tenant_id, ACTOR, _request(period="2026-10", contact_ids=[owing]), lambda _p: None)
    (october,) = _invoices(tenant_id)
    invoices.mark_sent(tenant_id, october.id, ACTOR, "marked")
    assert account_balances.balance_of(tenant_id, owing) == Decimal("40.00")
    # When November's drafts skip $0 invoices
    skipped = _commit(tenant_id, skip_zero=True)
    assert skipped["counts"]["created"] == 1 and skipped["counts"]["skip_zero"] == 2
    # Then a skipped account can be invoiced later for that period ($0 allowed now)
    later = _commit(tenant_id, skip_zero=False)
    assert later["counts"]["created"] == 2 and later["counts"]["exists"] == 1
    november = {r.contact_id: r for r in _invoices(tenant_id) if r.period_key == PERIOD}
    assert (november[owing].total, november[owing].balance_forward) == (Decimal("0"), Decimal("40.00"))
    assert (november[served].total, november[served].balance_forward) == (Decimal("90.00"), Decimal("0"))
    assert november[idle].total == Decimal("0")


def test_account_balances_follow_sending_paying_and_voiding(stack, tenant_id):
    (account,) = _seed(tenant_id, 1)
    _commit(tenant_id)
    (record,) = _invoices(tenant_id)
    assert account_balances.balance_of(tenant_id, account) == 0  # a draft owes nothing yet
    invoices.mark_sent(tenant_id, record.id, ACTOR, "marked")
    assert account_balances.balance_of(tenant_id, account) == Decimal("90.00")
    payment = {"id": "pay1", "amount": Decimal("30.00"), "date": "2026-11-10", "source": "fieldbill"}
    invoices.record_payment(tenant_id, record.id, payment, ACTOR)
    assert account_balances.balance_of(tenant_id, account) == Decimal("60.00")
    invoices.remove_payment(tenant_id, record.id, "pay1", ACTOR, None)
    assert account_balances.balance_of(tenant_id, account) == Decimal("90.00")
    invoices.void(tenant_id, record.id, ACTOR, "wrong")
    assert account_balances.balance_of(tenant_id, account) == 0


def test_regenerating_a_draft_rebuilds_its_lines_and_keeps_bill_once(stack, tenant_id):
    (account,) = _seed(tenant_id, 1)
    _commit(tenant_id)
    (record,) = _invoices(tenant_id)
    # Given a second service started on the account after the draft was made
    _service(tenant_id, account, "25.00", service_id="s-extra")
    assert regenerate.regenerate_draft(tenant_id, record.id, ACTOR) is True
    rebuilt = invoices.get(tenant_id, record.id)
    assert rebuilt.total == Decimal("115.00") and len(rebuilt.item_ids) == 2
    assert regenerate.regenerate_draft(tenant_id, record.id, ACTOR) is False  # nothing new
    # And a run of the same period still creates nothing
    assert _commit(tenant_id)["counts"]["exists"] == 1
    assert len(_invoices(tenant_id)) == 1


def test_a_preview_kept_in_parts_still_says_what_changed(stack, tenant_id, monkeypatch):
    """A preview of thousands of accounts is kept in parts (one item holds 400 KB):
    read back whole, a stale commit still names the account and the input that changed."""
    monkeypatch.setattr(store, "PREVIEW_PART_ACCOUNTS", 2)
    accounts = _seed(tenant_id, 5, with_service=4)
    shown = drafts.preview(tenant_id, _request())
    kept = store.preview_shown(tenant_id, shown.fingerprint)
    assert kept is not None and kept.accounts == {p.contact_id: p.inputs for p in shown.accounts}
    _service(tenant_id, accounts[4], "15.00")
    stale = _commit(tenant_id, preview_fingerprint=shown.fingerprint)
    assert stale["stale"] is True
    assert (stale["changed"]["added"], stale["changed"]["removed"]) == ([], [])
    assert stale["changed"]["why"] == {accounts[4]: ["services"]}
    assert _invoices(tenant_id) == []


def test_a_commit_costs_at_most_two_dynamodb_requests_per_invoice_and_a_preview_a_handful(stack, tenant_id):
    """make bench's goal (<= 2 requests per invoice), held by a test: counted where moto
    serves them, so the count does not depend on the machine's speed. Nothing read per account
    but the write: tax choices, numbering and settings are read once per run."""
    from local import moto_dynamodb

    _seed(tenant_id, 60)
    moto_dynamodb.REQUESTS.clear()
    drafts.preview(tenant_id, _request())
    preview_requests = sum(moto_dynamodb.REQUESTS.values())
    moto_dynamodb.REQUESTS.clear()
    result = _commit(tenant_id)
    commit_requests = sum(moto_dynamodb.REQUESTS.values())
    assert result["counts"]["created"] == 60
    assert preview_requests <= 15, dict(moto_dynamodb.REQUESTS)
    assert commit_requests <= 2 * 60, commit_requests


def test_numbers_stay_gapless_and_unique_when_another_writer_takes_numbers_mid_run(
    stack, tenant_id, monkeypatch
):
    """A commit keeps the counter as it left it instead of reading it before each invoice:
    another writer taking numbers in between must cost a read, never a duplicate or a gap."""
    from fieldbill.store import billing
    from fieldbill.store import numbering as numbers

    accounts = _seed(tenant_id, 12)
    real = store.write_period_invoice
    calls = {"n": 0}

    def interleaved(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] in (3, 4, 9):  # someone else numbers a record between two of ours
            numbers.write_numbered(
                tenant_id,
                billing.INVOICE_SEQUENCE,
                f"other-{calls['n']}",
                lambda _tx, _number: None,
                mode=numbers.Mode.AUTOMATIC_FIXED,
            )
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "write_period_invoice", interleaved)
    assert _commit(tenant_id)["counts"]["created"] == 12
    _one_per_account(tenant_id, accounts)
    ours = sorted(int(r.number) for r in _invoices(tenant_id))
    assert len(set(ours)) == 12
    # with the other writer's three in between, the sequence has no gap and no number twice
    assert max(ours) - min(ours) + 1 == 15
