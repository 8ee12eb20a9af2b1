from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldbill.domain import payments
from fieldbill.domain.errors import ValidationError
from fieldbill.domain.payments import Balance, BalanceState


def test_payment_reduces_balance_and_moves_state() -> None:
    b = payments.apply_payment(Balance(total=Decimal("100.00")), Decimal("40.00"))
    assert b.balance == Decimal("60.00")
    assert b.state is BalanceState.PARTIALLY_PAID
    b = payments.apply_credit(b, Decimal("60.00"))
    assert b.balance == Decimal("0.00")
    assert b.state is BalanceState.PAID


def test_over_payment_names_the_field_and_leaves_balance() -> None:
    start = Balance(total=Decimal("10.00"))
    with pytest.raises(ValidationError) as err:
        payments.apply_payment(start, Decimal("10.01"))
    assert err.value.field == "amount"
    assert start.balance == Decimal("10.00")


def test_removed_payment_brings_balance_back() -> None:
    b = payments.apply_payment(Balance(total=Decimal("10.00")), Decimal("10.00"))
    assert payments.remove_payment(b, Decimal("10.00")).state is BalanceState.OPEN


def test_account_balance_is_open_balances_minus_unapplied_credits() -> None:
    assert payments.account_balance([Decimal("10.00"), Decimal("5.50")], [Decimal("3.00")]) == Decimal(
        "12.50"
    )


@given(
    total_cents=st.integers(min_value=1, max_value=10**8),
    steps=st.lists(st.tuples(st.sampled_from(["pay", "credit"]), st.integers(min_value=-5, max_value=10**8))),
)
def test_balance_is_total_minus_payments_minus_credits_never_negative(
    total_cents: int, steps: list[tuple[str, int]]
) -> None:
    total = Decimal(total_cents).scaleb(-2)
    b = Balance(total=total)
    paid = credited = Decimal("0")
    for kind, amount_cents in steps:
        amount = Decimal(amount_cents).scaleb(-2)
        apply = payments.apply_payment if kind == "pay" else payments.apply_credit
        try:
            b = apply(b, amount)
        except ValidationError as err:
            assert err.field == "amount"
            assert amount <= 0 or amount > total - paid - credited
            continue
        if kind == "pay":
            paid += amount
        else:
            credited += amount
        assert b.balance == total - paid - credited
        assert b.balance >= 0


# ---------------------------------------------------------------------------- credit memos (wt-credit)
def test_a_credit_lowers_the_balance_and_the_excess_stays_unapplied() -> None:
    paid = payments.apply_payment(Balance(total=Decimal("100.00")), Decimal("40.00"))
    split = payments.apply_credit_memo(paid, Decimal("70.00"), credited_before=Decimal("0"))
    assert (split.applied, split.unapplied, split.after.balance) == (
        Decimal("60.00"),
        Decimal("10.00"),
        Decimal("0.00"),
    )
    assert split.after.state is BalanceState.PAID and not split.full


def test_credits_covering_the_total_are_a_full_credit() -> None:
    start = Balance(total=Decimal("100.00"))
    first = payments.apply_credit_memo(start, Decimal("30.00"), credited_before=Decimal("0"))
    assert not first.full and first.after.balance == Decimal("70.00")
    second = payments.apply_credit_memo(first.after, Decimal("70.00"), credited_before=Decimal("30.00"))
    assert second.full and second.unapplied == Decimal("0.00")


def test_a_credit_amount_comes_from_an_amount_or_lines_never_both() -> None:
    lines = [
        payments.CreditLine(description="refund", quantity=Decimal("1.5"), unit_price=Decimal("10.005")),
        payments.CreditLine(description="x", quantity=Decimal("1"), unit_price=Decimal("2")),
    ]
    assert payments.credit_amount(None, lines) == Decimal("17.01")  # 15.0075 -> 15.01, + 2.00
    for amount, given_lines, field in (
        (Decimal("1"), lines, "amount"),
        (None, [], "amount"),
        (Decimal("0"), [], "amount"),
        (Decimal("1.001"), [], "amount"),
        (
            None,
            [payments.CreditLine(description="", quantity=Decimal("0"), unit_price=Decimal("1"))],
            "lines[0].quantity",
        ),
    ):
        with pytest.raises(ValidationError) as err:
            payments.credit_amount(amount, given_lines)
        assert err.value.field == field


@given(
    total=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("10000"), places=2),
    paid_share=st.decimals(min_value=Decimal("0"), max_value=Decimal("1"), places=2),
    credits=st.lists(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("5000"), places=2), max_size=5),
)
def test_credits_never_make_a_balance_negative_and_conserve_the_amount(
    total: Decimal, paid_share: Decimal, credits: list[Decimal]
) -> None:
    current = Balance(total=total)
    paid = (total * paid_share).quantize(Decimal("0.01"))
    if paid > 0:
        current = payments.apply_payment(current, paid)
    before = Decimal("0")
    for amount in credits:
        split = payments.apply_credit_memo(current, amount, credited_before=before)
        assert split.applied + split.unapplied == amount
        assert split.after.balance == total - split.after.amount_paid - split.after.amount_credited >= 0
        assert split.full == (before + amount >= total)
        current, before = split.after, before + amount
