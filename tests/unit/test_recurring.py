"""Recurring billing in the domain (issue 16): periods, the proration rule, the draft-invoice plan.

The preview and the commit both call `plan_run`; the property tests hold it to the rules that make
"preview = commit" mean something: the plan depends only on the data (never on the order it was
read in), totals are the lines' sum, the balance brought forward is never added, and one
(profile, period, account) names one invoice.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldbill.domain import model as dm
from fieldbill.domain import recurring as r
from fieldbill.domain.errors import ValidationError

T = "acme"


def _profile(**kw) -> r.BillProfile:
    base = {"id": "bp1", "name": "Residential", "cadence": "monthly", "start_date": date(2026, 1, 1)}
    return r.BillProfile(**{**base, **kw})


def _service(**kw) -> r.RecurringService:
    base = {
        "id": "s1",
        "contact_id": "c1",
        "name": "Weekly cart pickup",
        "product_id": "p1",
        "product_name": "Cart pickup",
        "rate": Decimal("90.00"),
        "basis": "period",
        "start_date": date(2026, 1, 1),
    }
    return r.RecurringService(**{**base, **kw})


def _item(contact: str, n: int, amount: str, day: date = date(2026, 11, 5)) -> dm.BillableItem:
    return dm.BillableItem(
        id=f"e{contact}{n}.task_entry",
        tenant_id=T,
        entry_id=f"e{contact}{n}",
        task_id="t",
        contact_id=contact,
        line_kind="task_entry",
        work_date=day,
        description="work",
        product_id="p-work",
        product_name="Work",
        product_scope="default",
        unit="hour",
        quantity=Decimal("1"),
        unit_price=Decimal(amount),
        price_source="task",
        amount=Decimal(amount),
    )


def _run(accounts, **kw) -> r.RunInput:
    profile = kw.pop("profile", _profile())
    period = kw.pop("period", r.period_for(profile, "2026-11"))
    base = {
        "tenant_id": T,
        "profile": profile,
        "period": period,
        "invoice_date": period.default_invoice_date(),
        "skip_zero": False,
        "destination": dm.Destination.LOCAL,
        "accounts": tuple(accounts),
    }
    return r.RunInput(**{**base, **kw})


# ---------------------------------------------------------------------------- periods
def test_monthly_periods_run_from_the_billing_day_to_the_day_before_it():
    profile = _profile(billing_day=15)
    period = r.period_for(profile, "2026-11")
    assert (period.start, period.end, period.days) == (date(2026, 11, 15), date(2026, 12, 14), 30)
    assert r.period_containing(profile, date(2026, 11, 14)).key == "2026-10"
    assert period.default_invoice_date() == date(2026, 11, 1)


def test_quarterly_and_yearly_periods_align_to_the_billing_start_month():
    quarterly = _profile(cadence="quarterly", start_date=date(2026, 2, 1))
    assert r.period_containing(quarterly, date(2026, 4, 30)).key == "2026-02"
    assert r.period_for(quarterly, "2026-05").end == date(2026, 7, 31)
    with pytest.raises(ValidationError) as refused:
        r.period_for(quarterly, "2026-04")
    assert refused.value.field == "period"
    yearly = _profile(cadence="yearly", start_date=date(2026, 3, 1))
    assert r.period_for(yearly, "2027-03").end == date(2028, 2, 29)


def test_every_n_weeks_periods_start_on_the_billing_start_date():
    profile = _profile(cadence="weeks", every_weeks=2, start_date=date(2026, 11, 2))
    period = r.period_for(profile, "2026-11-16")
    assert (period.start, period.end) == (date(2026, 11, 16), date(2026, 11, 29))
    with pytest.raises(ValidationError):
        r.period_for(profile, "2026-11-09")


def test_no_period_before_the_billing_start_date_and_bad_keys_are_refused():
    profile = _profile(start_date=date(2026, 6, 1))
    with pytest.raises(ValidationError):
        r.period_for(profile, "2026-04")
    with pytest.raises(ValidationError):
        r.period_for(profile, "November")
    assert [p.key for p in r.periods(profile, date(2026, 6, 10))] == ["2026-06", "2026-07", "2026-08"]


# ---------------------------------------------------------------------------- proration
def test_a_service_covering_the_whole_period_is_one_times_the_rate():
    period = r.period_for(_profile(), "2026-11")
    charge = r.service_charge(T, _service(), period)
    assert charge is not None
    assert (charge.id, charge.quantity, charge.unit_price, charge.amount) == (
        "s1.2026-11",
        Decimal("1"),
        Decimal("90.00"),
        Decimal("90.00"),
    )


def test_a_service_starting_inside_the_period_is_prorated_by_covered_days():
    period = r.period_for(_profile(), "2026-11")  # 30 days
    charge = r.service_charge(T, _service(start_date=date(2026, 11, 21)), period)  # 10 days
    assert charge is not None
    assert charge.unit_price == Decimal("30.00") and charge.amount == Decimal("30.00")
    assert "prorated 10/30 days" in charge.description
    ended = r.service_charge(T, _service(rate=Decimal("100"), end_date=date(2026, 11, 1)), period)
    assert ended is not None and ended.amount == Decimal("3.33")  # 100 x 1/30, half-up


def test_a_per_visit_service_counts_its_weekday_on_covered_days():
    period = r.period_for(_profile(), "2026-11")  # Mondays: 2, 9, 16, 23, 30
    weekly = _service(basis="visit", rate=Decimal("25"), visit_weekday=0, start_date=date(2026, 11, 10))
    charge = r.service_charge(T, weekly, period)
    assert charge is not None and (charge.quantity, charge.amount) == (Decimal("3"), Decimal("75.00"))


def test_a_service_outside_the_period_charges_nothing():
    period = r.period_for(_profile(), "2026-11")
    assert r.service_charge(T, _service(start_date=date(2026, 12, 1)), period) is None
    assert r.service_charge(T, _service(end_date=date(2026, 10, 31)), period) is None


# ---------------------------------------------------------------------------- the plan
def test_balance_is_brought_forward_but_not_added_and_zero_invoices_follow_skip_zero():
    balance_only = r.AccountInput(contact_id="c2", name="B", balance=Decimal("40"))
    served = r.AccountInput(contact_id="c1", name="A", services=(_service(),), balance=Decimal("10"))
    nothing = r.AccountInput(contact_id="c3", name="C")
    plan = r.plan_run(_run([balance_only, served, nothing]))
    by = {p.contact_id: p for p in plan.accounts}
    assert [p.contact_id for p in plan.accounts] == ["c1", "c2", "c3"]
    assert by["c1"].total == Decimal("90.00") and by["c1"].balance_forward == Decimal("10.00")
    assert by["c1"].invoice is not None and by["c1"].invoice.total == Decimal("90.00")
    assert (by["c2"].action, by["c2"].total) == ("create", Decimal("0.00"))
    assert "zero_invoice" in by["c2"].exceptions and "no_active_services" in by["c2"].exceptions
    skipping = r.plan_run(_run([balance_only, served, nothing], skip_zero=True))
    assert [p.action for p in skipping.accounts] == ["create", "skip_zero", "skip_zero"]
    assert skipping.totals["invoices"] == 1 and plan.totals["invoices"] == 3


def test_the_plan_names_quickbooks_gaps_and_zero_priced_lines():
    free = _service(id="s2", rate=Decimal("0"))
    account = r.AccountInput(contact_id="c1", name="A", services=(_service(), free))
    plan = r.plan_run(
        _run([account], destination=dm.Destination.QUICKBOOKS, unmapped_products=frozenset({"p1"}))
    )
    assert set(plan.accounts[0].exceptions) == {
        "zero_priced_line",
        "customer_not_in_quickbooks",
        "product_not_in_quickbooks",
    }


def test_the_invoice_id_is_the_key_of_profile_period_and_account():
    a = r.period_invoice_id(T, "bp1", "2026-11", "c1")
    assert a == r.period_invoice_id(T, "bp1", "2026-11", "c1")
    others = {r.period_invoice_id(T, "bp1", "2026-12", "c1"), r.period_invoice_id(T, "bp2", "2026-11", "c1")}
    assert len({a, *others}) == 3


def test_the_account_terms_override_the_profile_terms_and_chosen_accounts_must_exist():
    account = r.AccountInput(contact_id="c1", name="A", services=(_service(),), terms_days=15)
    (planned,) = r.plan_run(_run([account])).accounts
    assert planned.invoice is not None and planned.invoice.due_date == date(2026, 11, 16)
    with pytest.raises(ValidationError):
        r.select_accounts([account], ["c1", "nobody"])


def test_pending_items_after_the_period_wait_for_a_later_period():
    later = _item("c1", 1, "50", day=date(2026, 12, 3))
    now = _item("c1", 2, "20")
    plan = r.plan_run(_run([r.AccountInput(contact_id="c1", name="A", pending=(later, now))]))
    assert [i.id for i in plan.accounts[0].items] == [now.id]


def test_a_change_of_data_changes_the_fingerprint_and_says_which_account():
    a = r.AccountInput(contact_id="c1", name="A", services=(_service(),))
    b = r.AccountInput(contact_id="c2", name="B", balance=Decimal("5"))
    before = r.plan_run(_run([a, b]))
    after = r.plan_run(_run([a, r.AccountInput(contact_id="c2", name="B", balance=Decimal("6"))]))
    assert before.fingerprint != after.fingerprint
    shown = {p.contact_id: p.inputs for p in before.accounts}
    changes = r.changed_accounts(shown, after)
    assert {k: changes[k] for k in ("added", "removed", "changed")} == {
        "added": [],
        "removed": [],
        "changed": ["c2"],
    }


amounts = st.decimals(min_value=Decimal("0"), max_value=Decimal("5000"), places=2)


@st.composite
def accounts(draw):
    count = draw(st.integers(min_value=1, max_value=8))
    out = []
    for n in range(count):
        contact = f"c{n}"
        services = []
        for k in range(draw(st.integers(0, 2))):
            start = date(2026, 10, 1) + timedelta(days=draw(st.integers(0, 70)))
            end = draw(st.none() | st.integers(0, 60).map(lambda d, s=start: s + timedelta(days=d)))
            services.append(
                _service(
                    id=f"s{n}-{k}", contact_id=contact, rate=draw(amounts), start_date=start, end_date=end
                )
            )
        items = tuple(_item(contact, k, str(draw(amounts))) for k in range(draw(st.integers(0, 3))))
        out.append(
            r.AccountInput(
                contact_id=contact,
                name=contact,
                services=tuple(services),
                pending=items,
                balance=draw(st.decimals(min_value=Decimal("-100"), max_value=Decimal("9000"), places=2)),
            )
        )
    return out


@settings(max_examples=150, deadline=None)
@given(accounts(), st.booleans(), st.randoms(use_true_random=False))
def test_preview_equals_commit_whatever_order_the_data_is_read_in(data, skip_zero, rnd: random.Random):
    # Given the same accounts, services, items and balances read in two different orders
    shuffled = [
        r.AccountInput(
            contact_id=a.contact_id,
            name=a.name,
            services=tuple(rnd.sample(a.services, len(a.services))),
            pending=tuple(rnd.sample(a.pending, len(a.pending))),
            balance=a.balance,
        )
        for a in rnd.sample(data, len(data))
    ]
    # When the preview plans one and the commit plans the other
    preview = r.plan_run(_run(data, skip_zero=skip_zero))
    commit = r.plan_run(_run(shuffled, skip_zero=skip_zero))
    # Then they are the same plan, invoice for invoice
    assert preview == commit
    for plan in preview.accounts:
        lines = plan.invoice.lines if plan.invoice else ()
        lines_total = sum((ln.amount for ln in lines), Decimal("0")) if plan.invoice else plan.total
        # the total is the lines' sum, never the balance brought forward
        assert plan.total == lines_total
        if plan.invoice is not None:
            assert plan.invoice.total == plan.total
            assert plan.invoice.id == r.period_invoice_id(T, "bp1", "2026-11", plan.contact_id)
        assert (plan.action == "skip_zero") == (skip_zero and plan.total == 0)


def test_a_pending_item_marked_taxable_is_taxed_on_the_period_invoice_as_on_any_invoice():
    """A billed item keeps its own `taxable` mark on a period invoice (a visit's taxable service
    line, issue 17) as it does on every other invoice: both build their lines the same way."""
    from dataclasses import replace

    from fieldbill.domain import tax

    item = replace(_item("c1", 1, "100.00"), taxable=True)
    rules = tax.TaxRules(
        codes={"ca": tax.TaxCode("ca", "CA", Decimal("7.25"))}, default_code="ca", taxable_kinds=()
    )
    account = r.AccountInput(contact_id="c1", name="A", pending=(item,))
    plan = r.plan_run(_run([account], tax_rules=rules))
    invoice = plan.accounts[0].invoice
    assert invoice is not None
    assert [line.taxable for line in invoice.lines] == [True]
    assert invoice.total == Decimal("107.25")


# ---------------------------------------------------------------------------- What changed
def _since(before: r.RunPlan, after: r.RunPlan) -> dict:
    return r.changed_accounts({p.contact_id: p.inputs for p in before.accounts}, after, before.parameters)


def test_a_stale_preview_names_the_input_that_changed_for_each_account():
    # Given a preview of three accounts
    a = r.AccountInput(contact_id="c1", name="A", services=(_service(),))
    b = r.AccountInput(contact_id="c2", name="B", balance=Decimal("40"))
    c = r.AccountInput(contact_id="c3", name="C", pending=(_item("c3", 1, "20"),))
    before = r.plan_run(_run([a, b, c]))
    # When A's service gets another rate, B's balance moves, C gets more work and its own terms
    after = r.plan_run(
        _run(
            [
                r.AccountInput(contact_id="c1", name="A", services=(_service(rate=Decimal("95.00")),)),
                r.AccountInput(contact_id="c2", name="B", balance=Decimal("65.5")),
                r.AccountInput(
                    contact_id="c3",
                    name="C",
                    pending=(_item("c3", 1, "20"), _item("c3", 2, "5")),
                    terms_days=15,
                ),
            ]
        )
    )
    changes = _since(before, after)
    # Then each account says which of its inputs changed (and the balance from what to what)
    assert changes["changed"] == ["c1", "c2", "c3"]
    assert changes["why"] == {"c1": ["services"], "c2": ["balance"], "c3": ["billable_items", "terms"]}
    assert changes["balances"] == {"c2": {"before": "40.00", "now": "65.50"}}
    assert changes["run"] == []


def test_a_stale_preview_names_a_changed_invoice_date_or_skip_zero_once_not_per_account():
    accounts = [
        r.AccountInput(contact_id="c1", name="A", services=(_service(),)),
        r.AccountInput(contact_id="c2", name="B", balance=Decimal("40")),
    ]
    before = r.plan_run(_run(accounts))
    later = r.plan_run(_run(accounts, invoice_date=date(2026, 11, 15)))
    changes = _since(before, later)
    assert (changes["run"], changes["changed"]) == (["invoice_date"], [])
    skipping = r.plan_run(_run(accounts, skip_zero=True))
    changes = _since(before, skipping)
    # B's $0 invoice is not created now: its outcome changed because of the run's skip $0
    assert (changes["run"], changes["changed"], changes["why"]) == (
        ["skip_zero"],
        ["c2"],
        {"c2": ["outcome"]},
    )


def test_an_account_joining_or_leaving_since_the_preview_is_named():
    a = r.AccountInput(contact_id="c1", name="A", services=(_service(),))
    b = r.AccountInput(contact_id="c2", name="B")
    changes = _since(r.plan_run(_run([a])), r.plan_run(_run([b])))
    assert (changes["added"], changes["removed"], changes["changed"]) == (["c2"], ["c1"], [])
