"""wt-life: a credit memo is live until removed (credit_memo machine), and removing it owes again
the part it had applied (pure rules)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fieldbill.domain import payments
from fieldbill.domain.errors import Conflict, InvalidTransition, ValidationError
from fieldbill.domain.model import InvoiceStatus
from fieldbill.domain.states import CREDIT_MEMO_MACHINE, CreditMemoStatus, status_for_balance


def test_a_live_credit_memo_can_be_removed_and_nothing_else():
    assert CREDIT_MEMO_MACHINE.can(CreditMemoStatus.LIVE, CreditMemoStatus.REMOVED)
    assert not CREDIT_MEMO_MACHINE.can(CreditMemoStatus.REMOVED, CreditMemoStatus.LIVE)
    with pytest.raises(InvalidTransition) as refused:
        CREDIT_MEMO_MACHINE.check("cm-1", CreditMemoStatus.REMOVED, CreditMemoStatus.LIVE)
    assert (refused.value.machine, refused.value.from_status, refused.value.to_status) == (
        "credit_memo",
        "removed",
        "live",
    )
    with pytest.raises(Conflict):
        CREDIT_MEMO_MACHINE.check("cm-1", CreditMemoStatus.REMOVED, CreditMemoStatus.REMOVED)


def test_removing_a_credit_owes_its_applied_part_again_and_the_status_follows():
    paid = payments.Balance(total=Decimal("160.00"), amount_credited=Decimal("160.00"))
    after = payments.remove_credit_memo(paid, Decimal("120.00"))
    assert (after.amount_credited, after.balance) == (Decimal("40.00"), Decimal("120.00"))
    assert status_for_balance(InvoiceStatus.PAID, after.total, after.balance) is InvoiceStatus.PARTIALLY_PAID
    none_left = payments.remove_credit_memo(after, Decimal("40.00"))
    assert status_for_balance(InvoiceStatus.PARTIALLY_PAID, none_left.total, none_left.balance) is (
        InvoiceStatus.OPEN
    )
    # A credit wholly unapplied (the contact's credit) leaves the invoice's balance as it is
    assert payments.remove_credit_memo(after, Decimal("0")).balance == after.balance
    with pytest.raises(ValidationError):
        payments.remove_credit_memo(after, Decimal("40.01"))
