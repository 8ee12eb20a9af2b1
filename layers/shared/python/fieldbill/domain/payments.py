"""Payments and credit memos against an invoice, and the balances they leave (pure).

balance = total - payments - credits, never negative: a payment or credit over the balance is a
ValidationError naming the field. The status a balance implies (open / partially_paid / paid) is
named here as BalanceState; the store maps it to the invoice machine's statuses (issue 13 contract)
once those exist, so this module does not depend on the order the branches are merged in.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from fieldbill.domain import money
from fieldbill.domain.errors import ValidationError


class BalanceState(enum.StrEnum):
    OPEN = "open"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"


@dataclass(frozen=True, slots=True, kw_only=True)
class Payment:
    id: str
    invoice_id: str
    contact_id: str
    amount: Decimal
    date: date
    method: str
    reference: str | None = None
    qbo_id: str | None = None  # links a pushed payment to QuickBooks' so a pull never counts it twice


@dataclass(frozen=True, slots=True, kw_only=True)
class CreditMemo:
    id: str
    invoice_id: str
    contact_id: str
    amount: Decimal
    date: date
    reason: str
    applied: bool = True  # an unapplied credit lowers the account balance, not an invoice's
    qbo_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Balance:
    total: Decimal
    amount_paid: Decimal = Decimal("0.00")
    amount_credited: Decimal = Decimal("0.00")

    @property
    def balance(self) -> Decimal:
        return money.cents(self.total - self.amount_paid - self.amount_credited)

    @property
    def state(self) -> BalanceState:
        if self.balance == 0 and self.total > 0:
            return BalanceState.PAID
        if self.amount_paid > 0 or self.amount_credited > 0:
            return BalanceState.PARTIALLY_PAID if self.balance > 0 else BalanceState.PAID
        return BalanceState.OPEN


def _positive(field: str, amount: Decimal) -> Decimal:
    if amount <= 0:
        raise ValidationError(field, "must be greater than 0")
    if money.cents(amount) != amount:
        raise ValidationError(field, "has more than 2 decimals")
    return amount


def _within_balance(current: Balance, amount: Decimal, field: str) -> None:
    _positive(field, amount)
    if amount > current.balance:
        raise ValidationError(field, f"{amount} is over the invoice balance {current.balance}")


def apply_payment(current: Balance, amount: Decimal, *, field: str = "amount") -> Balance:
    _within_balance(current, amount, field)
    return replace(current, amount_paid=money.cents(current.amount_paid + amount))


def apply_credit(current: Balance, amount: Decimal, *, field: str = "amount") -> Balance:
    _within_balance(current, amount, field)
    return replace(current, amount_credited=money.cents(current.amount_credited + amount))


def remove_payment(current: Balance, amount: Decimal) -> Balance:
    _positive("amount", amount)
    if amount > current.amount_paid:
        raise ValidationError("amount", f"{amount} is more than was paid ({current.amount_paid})")
    return replace(current, amount_paid=money.cents(current.amount_paid - amount))


def account_balance(open_balances: Iterable[Decimal], unapplied_credits: Iterable[Decimal]) -> Decimal:
    """A contact's account balance: its open invoice balances minus its unapplied credits."""
    return money.cents(sum(open_balances, Decimal("0")) - sum(unapplied_credits, Decimal("0")))


# ------------------------------------------------------------------ credit memos (issue 13, wt-credit)
@dataclass(frozen=True, slots=True, kw_only=True)
class CreditLine:
    """One line of a credit memo given by lines instead of an amount."""

    description: str
    quantity: Decimal
    unit_price: Decimal
    product_id: str | None = None
    taxable: bool | None = None  # wt-life: None, as the invoice's lines decide (domain/credit_tax.py)

    @property
    def amount(self) -> Decimal:
        return money.line_amount(self.quantity, self.unit_price)


@dataclass(frozen=True, slots=True, kw_only=True)
class CreditSplit:
    """What a credit memo does to an invoice: the part that fits its balance is applied (lowers
    it), the rest stays the contact's unapplied credit (lowers the account balance only)."""

    after: Balance
    amount: Decimal
    applied: Decimal
    unapplied: Decimal
    # All credit memos together cover the invoice's total: the work is no longer billed by it,
    # so its items are billable again, as when it is voided.
    full: bool


def credit_amount(amount: Decimal | None, lines: Iterable[CreditLine] = ()) -> Decimal:
    """A credit memo's amount: the amount given, or the sum of its lines (each rounded as a
    sales line); both or neither is a ValidationError naming the field."""
    lines = tuple(lines)
    if amount is not None and lines:
        raise ValidationError("amount", "give an amount or lines, not both")
    if amount is None and not lines:
        raise ValidationError("amount", "give an amount or lines")
    if lines:
        for n, line in enumerate(lines):
            if line.quantity <= 0:
                raise ValidationError(f"lines[{n}].quantity", "must be greater than 0")
            if line.unit_price < 0:
                raise ValidationError(f"lines[{n}].unit_price", "must not be negative")
        return _positive("lines", money.cents(sum((line.amount for line in lines), Decimal("0"))))
    assert amount is not None
    return _positive("amount", amount)


def apply_credit_memo(current: Balance, amount: Decimal, credited_before: Decimal) -> CreditSplit:
    """Credit `amount` against an invoice: balance = total - payments - credits, never negative.
    `credited_before`: the amounts of the invoice's earlier credit memos (applied or not)."""
    _positive("amount", amount)
    applied = min(amount, max(current.balance, Decimal("0")))
    after = replace(current, amount_credited=money.cents(current.amount_credited + applied))
    return CreditSplit(
        after=after,
        amount=amount,
        applied=applied,
        unapplied=money.cents(amount - applied),
        full=current.total > 0 and credited_before + amount >= current.total,
    )


# ------------------------------------------------------------------ removing a credit memo (wt-life)
def remove_credit_memo(current: Balance, applied: Decimal) -> Balance:
    """Undo a credit memo: the part it applied is owed again (its unapplied part was the
    contact's credit, not the invoice's)."""
    if applied < 0 or applied > current.amount_credited:
        raise ValidationError(
            "applied", f"{applied} is not within what was credited ({current.amount_credited})"
        )
    return replace(current, amount_credited=money.cents(current.amount_credited - applied))
