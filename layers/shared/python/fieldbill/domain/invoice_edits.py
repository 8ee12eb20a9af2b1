"""Editing an invoice (pure): which invoices can change, and what an edit makes of them.

An edit names only what changes. `lines`, when given, is the invoice's whole new list: a line
with a `line_no` keeps that line (with the fields given changed), a line without one is added by
hand, and a line left out is removed (its billable item becomes pending again: the store releases
it in the same transaction). Every amount is recomputed by the money rules (QuickBooks' own check:
Amount = Qty x UnitPrice rounded half-up to cents), never taken from the client.

Dates: a due date given is kept; otherwise terms (Net-N days) given, or a new issue date, move the
due date to issue date + terms. The total can never drop below what is paid and credited already.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from fieldbill.domain import money, tax
from fieldbill.domain.errors import InvalidTransition, ValidationError
from fieldbill.domain.model import InvoiceLine, InvoiceStatus, LineKind

# Draft, and open with nothing paid or credited yet (QuickBooks takes the change as an update).
EDITABLE = frozenset({InvoiceStatus.DRAFT, InvoiceStatus.OPEN})
# The statuses in which an invoice holds its billable items (bill once).
LIVE = frozenset({InvoiceStatus.DRAFT, InvoiceStatus.OPEN, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID})
MAX_LINES = 250  # QuickBooks Online's limit of lines on one sales form
MAX_TERMS_DAYS = 3650
DESCRIPTION_MAX = 4000  # QuickBooks' Description length on a sales line


@dataclass(frozen=True, slots=True, kw_only=True)
class LineChange:
    line_no: int | None = None  # None: a new line added by hand
    description: str | None = None
    quantity: Decimal | None = None
    unit_price: Decimal | None = None
    product_id: str | None = None
    product_name: str | None = None  # the catalog's name of product_id (the store looks it up)
    taxable: bool | None = None
    # issue 15: the line's own tax code (taxed at it whatever the product or contact say) and its
    # rate, which the store looks up (None with a code named: no such code, refused)
    tax_code_id: str | None = None
    tax_rate: Decimal | None = None
    product_non_taxable: bool = False  # the product given is non-taxable (the store looks it up)


@dataclass(frozen=True, slots=True, kw_only=True)
class InvoiceContent:
    """The parts of an invoice an edit may change, plus what limits it."""

    status: InvoiceStatus
    lines: tuple[InvoiceLine, ...]
    issue_date: date
    due_date: date | None
    terms_days: int | None
    paid_and_credited: Decimal = Decimal("0.00")
    texts: Mapping[str, str | None] = dataclasses.field(default_factory=dict)
    tax_rate: Decimal | None = None  # the rate the invoice copied from its tax code (domain/tax.py)
    contact_id: str | None = None  # whose invoice: its contact's tax choice applies to resolved lines


@dataclass(frozen=True, slots=True, kw_only=True)
class InvoiceEdit:
    lines: tuple[LineChange, ...] | None = None
    issue_date: date | None = None
    due_date: date | None = None
    terms_days: int | None = None
    # memo, customer_message, billing_email: only the keys given change (None clears one).
    texts: Mapping[str, str | None] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Edited:
    lines: tuple[InvoiceLine, ...]
    subtotal: Decimal
    total: Decimal
    balance: Decimal
    tax_total: Decimal
    issue_date: date
    due_date: date | None
    terms_days: int | None
    texts: Mapping[str, str | None]
    released_item_ids: tuple[str, ...]
    changed: tuple[str, ...]  # the names of what changed, for the audit record


def check_editable(status: InvoiceStatus, paid_and_credited: Decimal = Decimal("0")) -> None:
    if status not in EDITABLE or paid_and_credited > 0:
        why = "something is paid or credited on it" if status in EDITABLE else f"it is {status}"
        raise InvalidTransition(
            "invoice", status, "edited", f"only a draft or an open invoice can be edited: {why}"
        )


def totals(lines: Sequence[InvoiceLine], tax_rate: Decimal | None = None) -> tuple[Decimal, Decimal, Decimal]:
    """Subtotal, tax and total of the lines: the tax of the taxable lines at the invoice's rate,
    once per invoice (domain/tax.py; QuickBooks recomputes it itself under automated sales tax)."""
    subtotal = money.cents(sum((line.amount for line in lines), Decimal("0.00")))
    tax_total = tax.with_line_taxes(lines, tax_rate)[1]
    return subtotal, tax_total, money.cents(subtotal + tax_total)


def apply_edit(current: InvoiceContent, edit: InvoiceEdit, rules: tax.TaxRules | None = None) -> Edited:
    """`rules`: the tax rules new invoices of the tenant are made by (destination.tax_rules); with
    them a line given a product, and a line added, are resolved as on a new invoice (tax.resolve)."""
    check_editable(current.status, current.paid_and_credited)
    changed: list[str] = []
    lines = current.lines
    released: tuple[str, ...] = ()
    if edit.lines is not None:
        lines, released = _new_lines(current.lines, edit.lines)
        changed.append("lines")
    issue_date = edit.issue_date or current.issue_date
    terms = current.terms_days if edit.terms_days is None else edit.terms_days
    if edit.terms_days is not None and not 0 <= edit.terms_days <= MAX_TERMS_DAYS:
        raise ValidationError("terms_days", f"must be between 0 and {MAX_TERMS_DAYS}")
    due = current.due_date
    if edit.due_date is not None:
        due = edit.due_date
        changed.append("due_date")
    elif (edit.terms_days is not None or edit.issue_date is not None) and terms is not None:
        due = issue_date + timedelta(days=terms)
        changed.append("due_date")
    if edit.issue_date is not None:
        changed.append("issue_date")
    if edit.terms_days is not None:
        changed.append("terms_days")
    if due is not None and due < issue_date:
        raise ValidationError("due_date", f"{due} is before the invoice date {issue_date}")
    texts = dict(current.texts)
    for name, value in edit.texts.items():
        texts[name] = value
        changed.append(name)
    if edit.lines is not None:
        lines = tuple(
            _line_tax(line, change, current.tax_rate, f"lines[{index}]", rules, current.contact_id)
            for index, (line, change) in enumerate(zip(lines, edit.lines, strict=True))
        )
    lines = tax.with_line_taxes(lines, current.tax_rate)[0]
    subtotal, tax_total, total = totals(lines, current.tax_rate)
    if total < current.paid_and_credited:
        raise ValidationError(
            "lines", f"the total {total} is less than is paid and credited ({current.paid_and_credited})"
        )
    if total < 0:
        raise ValidationError("lines", f"the total {total} is negative")
    return Edited(
        lines=lines,
        subtotal=subtotal,
        total=total,
        balance=money.cents(total - current.paid_and_credited),
        tax_total=tax_total,
        issue_date=issue_date,
        due_date=due,
        terms_days=terms,
        texts=texts,
        released_item_ids=released,
        changed=tuple(dict.fromkeys(changed)),
    )


def _new_lines(
    old: Sequence[InvoiceLine], changes: Sequence[LineChange]
) -> tuple[tuple[InvoiceLine, ...], tuple[str, ...]]:
    if not changes:
        raise ValidationError("lines", "an invoice needs at least one line (delete a draft instead)")
    if len(changes) > MAX_LINES:
        raise ValidationError("lines", f"at most {MAX_LINES} lines")
    by_no = {line.line_no: line for line in old}
    kept: set[int] = set()
    built: list[InvoiceLine] = []
    next_no = max(by_no, default=0) + 1
    for index, change in enumerate(changes):
        where = f"lines[{index}]"
        if change.line_no is not None:
            base = by_no.get(change.line_no)
            if base is None:
                raise ValidationError(f"{where}.line_no", f"the invoice has no line {change.line_no}")
            if change.line_no in kept:
                raise ValidationError(f"{where}.line_no", f"line {change.line_no} is listed twice")
            kept.add(change.line_no)
            built.append(_changed_line(base, change, where))
        else:
            built.append(_added_line(next_no, change, where))
            next_no += 1
    released = tuple(line.item_id for line in old if line.line_no not in kept and line.item_id is not None)
    return tuple(built), released


def _checked(change: LineChange, where: str) -> None:
    if change.quantity is not None and change.quantity <= 0:
        raise ValidationError(f"{where}.quantity", "must be greater than 0")
    if change.quantity is not None and money.quantity(change.quantity) != change.quantity:
        raise ValidationError(f"{where}.quantity", "has more than 6 decimals")
    if change.unit_price is not None and money.unit_price(change.unit_price) != change.unit_price:
        raise ValidationError(f"{where}.unit_price", "has more than 6 decimals")
    if change.description is not None and not change.description.strip():
        raise ValidationError(f"{where}.description", "must not be empty")
    if change.description is not None and len(change.description) > DESCRIPTION_MAX:
        raise ValidationError(f"{where}.description", f"at most {DESCRIPTION_MAX} characters")
    if change.product_id is not None and change.product_name is None:
        raise ValidationError(f"{where}.product_id", f"no product {change.product_id!r}")


def _changed_line(base: InvoiceLine, change: LineChange, where: str) -> InvoiceLine:
    _checked(change, where)
    quantity = base.quantity if change.quantity is None else change.quantity
    unit_price = base.unit_price if change.unit_price is None else change.unit_price
    return dataclasses.replace(
        base,
        description=base.description if change.description is None else change.description,
        quantity=quantity,
        unit_price=unit_price,
        amount=money.line_amount(quantity, unit_price),
        product_id=base.product_id if change.product_id is None else change.product_id,
        product_name=base.product_name if change.product_name is None else change.product_name,
        taxable=base.taxable if change.taxable is None else change.taxable,
    )


def _added_line(line_no: int, change: LineChange, where: str) -> InvoiceLine:
    _checked(change, where)
    for name in ("description", "quantity", "unit_price", "product_id"):
        if getattr(change, name) is None:
            raise ValidationError(f"{where}.{name}", "is required on a new line")
    assert change.quantity is not None and change.unit_price is not None  # checked above
    return InvoiceLine(
        line_no=line_no,
        item_id=None,
        line_kind=LineKind.MANUAL,
        work_date=None,
        description=str(change.description),
        product_id=str(change.product_id),
        product_name=str(change.product_name),
        unit=None,
        quantity=change.quantity,
        unit_price=change.unit_price,
        amount=money.line_amount(change.quantity, change.unit_price),
        taxable=bool(change.taxable),
    )


def _line_tax(
    line: InvoiceLine,
    change: LineChange,
    invoice_rate: Decimal | None,
    where: str,
    rules: tax.TaxRules | None = None,
    contact_id: str | None = None,
) -> InvoiceLine:
    """A line's tax after a person's edit (issue 15), in tax.resolve's order: a code named on it
    taxes it at that code; taxable false, or a non-taxable product given, leaves it untaxed;
    taxable true taxes it at the invoice's rate; otherwise it keeps its tax."""
    if change.tax_code_id is not None:
        if change.taxable is False:
            raise ValidationError(f"{where}.taxable", "a line naming a tax code is taxable")
        if change.tax_rate is None:
            raise ValidationError(f"{where}.tax_code_id", f"no active tax code {change.tax_code_id!r}")
        return dataclasses.replace(
            line, taxable=True, tax_code_id=change.tax_code_id, tax_rate=change.tax_rate, tax_source=tax.LINE
        )
    if change.taxable is False:
        return dataclasses.replace(line, taxable=False, tax_code_id=None, tax_rate=None, tax_source=tax.LINE)
    if rules is not None and (change.product_id is not None or change.line_no is None):
        return _resolved(line, change, rules, contact_id, where, invoice_rate)
    if change.product_non_taxable and not (line.tax_source == tax.LINE and line.tax_code_id):
        # as tax.resolve: a non-taxable product decides, unless the line names its own code; a
        # line merely marked taxable does not
        return dataclasses.replace(
            line, taxable=False, tax_code_id=None, tax_rate=None, tax_source=tax.PRODUCT
        )
    if change.taxable:
        return dataclasses.replace(
            line, taxable=True, tax_code_id=None, tax_rate=invoice_rate, tax_source=tax.LINE
        )
    return line  # its tax as resolved when the invoice was made (or the invoice's rate: tax.line_rate)


# ---- issue 15: an edited line resolved by the invoice rules ---------------------------------------
def _resolved(
    line: InvoiceLine,
    change: LineChange,
    rules: tax.TaxRules,
    contact_id: str | None,
    where: str,
    invoice_rate: Decimal | None = None,
) -> InvoiceLine:
    """A line given a product (or added) resolved as a new invoice resolves it: line > product >
    contact > the tenant's default on the kinds the company taxes. The line level is what a person
    decided (a code, or "taxable" now or before); a mark left by the old product is not carried
    over (the new product answers for itself)."""
    if change.taxable:
        own = tax.TaxChoice(taxable=True)
    elif line.tax_source == tax.LINE:
        own = tax.TaxChoice(code_id=line.tax_code_id, taxable=bool(line.taxable))
    else:
        own = tax.NO_CHOICE
    product = rules.products.get(line.product_id or "") or tax.NO_CHOICE
    contact = rules.contacts.get(contact_id or "") or tax.NO_CHOICE
    try:
        found = tax.resolve(tax.kind_of(line), own, product, contact, rules)
    except ValidationError as exc:  # a code deleted since it was named: the line names it
        raise ValidationError(f"{where}.tax_code_id", exc.message) from exc
    rate = found.rate
    if found.source == tax.TENANT and found.taxable and invoice_rate is not None:
        rate = invoice_rate  # the default the invoice copied: a code's new rate never moves an invoice
    return dataclasses.replace(
        line, taxable=found.taxable, tax_code_id=found.code_id, tax_rate=rate, tax_source=found.source
    )
