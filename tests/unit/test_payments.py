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
