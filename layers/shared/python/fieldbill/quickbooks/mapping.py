"""Our records -> QuickBooks JSON. Pure functions: no I/O, money as Decimal.

Connection settings read here (QboConnection.settings):
- custom_txn_numbers (bool): the company numbers invoices itself. QuickBooks then leaves DocNumber
  blank unless it is sent; we send our invoice number only when one exists, never a made-up one
  (the seed: "if checked, will not use the next invoice number automatically, these will be blank").
  Off: DocNumber is never sent and QuickBooks assigns its next number.
- automated_tax (bool): QuickBooks computes sales tax from the lines' TAX/NON codes and the customer's
  location (no tax amount is sent; its TotalTax and TotalAmt are stored on our invoice); off, our
  tax (domain/tax.py: the invoice's code's rate on its taxable lines) is sent as TotalTax.
- taxable_line_kinds (list[str]): line kinds sent with TaxCodeRef TAX (others NON). Default: goods.
- default_income_account / default_expense_account (account ids) for items we create.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from fieldbill.domain import tax
from fieldbill.domain.money import line_amount

DOC_NUMBER_MAX = 21
DISPLAY_NAME_MAX = 500
ITEM_NAME_MAX = 100
DESCRIPTION_MAX = 4000
CUSTOMER_MEMO_MAX = 1000  # QuickBooks: CustomerMemo, max 1000 characters
PRIVATE_NOTE_MAX = 4000  # QuickBooks: PrivateNote, max 4000 characters
DEFAULT_TAXABLE_KINDS = tax.DEFAULT_TAXABLE_KINDS
MARKER_PREFIX = "fieldbill:invoice:"


class MappingError(ValueError):
    """Our record cannot become a valid QuickBooks object (a bug or bad data: not retried)."""

    def __init__(self, message: str, element: str = "") -> None:
        super().__init__(message)
        self.element = element


class LineLike(Protocol):
    line_kind: Any
    description: str | None
    product_id: str | None
    product_name: str | None
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    work_date: Any


class InvoiceLike(Protocol):
    tenant_id: str
    id: str
    issue_date: Any
    due_date: Any
    lines: Any


@dataclass(frozen=True)
class QboSettings:
    custom_txn_numbers: bool = False
    automated_tax: bool = False
    taxable_line_kinds: tuple[str, ...] = DEFAULT_TAXABLE_KINDS
    default_income_account: str | None = None
    default_expense_account: str | None = None
    # Who emails an invoice that QuickBooks holds: "email" (ours, with our PDF) or "quickbooks"
    # (its send endpoint) — wt-credit
    send_via: str = "email"

    @classmethod
    def from_map(cls, raw: Mapping[str, Any] | None) -> QboSettings:
        raw = dict(raw or {})
        kinds = raw.get("taxable_line_kinds")
        return cls(
            custom_txn_numbers=bool(raw.get("custom_txn_numbers", False)),
            automated_tax=bool(raw.get("automated_tax", False)),
            taxable_line_kinds=tuple(str(k) for k in kinds) if kinds is not None else DEFAULT_TAXABLE_KINDS,
            default_income_account=_opt(raw.get("default_income_account")),
            default_expense_account=_opt(raw.get("default_expense_account")),
            send_via="quickbooks" if raw.get("send_via") == "quickbooks" else "email",
        )


def _opt(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _date(value: Any) -> str | None:
    if value in (None, ""):
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)[:10]


def invoice_marker(tenant_id: str, invoice_id: str) -> str:
    """Written into PrivateNote: finds our invoice again when a create's answer was lost."""
    return f"{MARKER_PREFIX}{tenant_id}:{invoice_id}"


def private_note(memo: str | None, tenant_id: str, invoice_id: str) -> str:
    """The memo (internal, never printed) and our marker, which must survive whole: the memo is cut."""
    marker = invoice_marker(tenant_id, invoice_id)
    if not memo:
        return marker
    room = PRIVATE_NOTE_MAX - len(marker) - 1
    return f"{memo[:room]}\n{marker}"


def has_marker(qbo_invoice: Mapping[str, Any], tenant_id: str, invoice_id: str) -> bool:
    return invoice_marker(tenant_id, invoice_id) in str(qbo_invoice.get("PrivateNote") or "")


def clean_name(name: str, limit: int) -> str:
    """QuickBooks names: no colon (it separates sub-customers / sub-items), trimmed, bounded."""
    cleaned = " ".join(name.replace(":", "-").split())
    if not cleaned:
        raise MappingError("a name is required", "Name")
    return cleaned[:limit]


def doc_number(invoice_number: str | None, settings: QboSettings) -> str | None:
    """DocNumber to send: ours with custom transaction numbers on (if we have one), else none."""
    if not settings.custom_txn_numbers or not invoice_number:
        return None
    if len(invoice_number) > DOC_NUMBER_MAX:
        raise MappingError(f"invoice number longer than {DOC_NUMBER_MAX} characters", "DocNumber")
    return invoice_number


def sales_line(line: LineLike, item_ref: str | None, settings: QboSettings) -> dict[str, Any]:
    qty = Decimal(line.quantity)
    price = Decimal(line.unit_price)
    amount = Decimal(line.amount)
    if amount != line_amount(qty, price):
        # Our lines are built with the same rule; a mismatch is a bug and QuickBooks would say 6070.
        raise MappingError(f"line amount {amount} is not {qty} x {price} rounded to cents", "Line.Amount")
    # A line a person marked taxable is taxed; otherwise the company's taxable line kinds decide.
    taxable = tax.is_taxable(line, settings.taxable_line_kinds)  # the rule our own tax uses
    if getattr(line, "tax_source", None) is not None:
        # issue 15: resolved when the invoice was made (line > product > contact > tenant); a line
        # taxed at 0 % carries no tax either way
        rate = getattr(line, "tax_rate", None)
        taxable = bool(getattr(line, "taxable", False)) and (rate is None or Decimal(rate) != 0)
    detail: dict[str, Any] = {
        "Qty": qty,
        "UnitPrice": price,
        "TaxCodeRef": {"value": "TAX" if taxable else "NON"},
    }
    if item_ref:
        detail["ItemRef"] = {"value": item_ref}
    service_date = _date(line.work_date)
    if service_date:
        detail["ServiceDate"] = service_date
    out: dict[str, Any] = {
        "DetailType": "SalesItemLineDetail",
        "Amount": amount,
        "SalesItemLineDetail": detail,
    }
    description = line.description or line.product_name
    if description:
        out["Description"] = description[:DESCRIPTION_MAX]
    return out


def invoice_to_qbo(
    invoice: InvoiceLike,
    customer_ref: str,
    item_refs: Mapping[str, str],
    settings: QboSettings,
    *,
    invoice_number: str | None = None,
) -> dict[str, Any]:
    """The Invoice body for a create (add Id/SyncToken for a sparse update)."""
    lines = list(invoice.lines)
    if not lines:
        raise MappingError("an invoice needs at least one line", "Line")
    body: dict[str, Any] = {
        "CustomerRef": {"value": customer_ref},
        "Line": [sales_line(ln, item_refs.get(ln.product_id or ""), settings) for ln in lines],
        "PrivateNote": private_note(getattr(invoice, "memo", None), invoice.tenant_id, invoice.id),
    }
    message = getattr(invoice, "customer_message", None)
    if message:
        body["CustomerMemo"] = {"value": str(message)[:CUSTOMER_MEMO_MAX]}
    email = getattr(invoice, "billing_email", None)
    if email:
        body["BillEmail"] = {"Address": str(email)}
    txn_date = _date(invoice.issue_date)
    if txn_date:
        body["TxnDate"] = txn_date
    due = _date(invoice.due_date)
    if due:
        body["DueDate"] = due
    number = doc_number(invoice_number, settings)
    if number:
        body["DocNumber"] = number
    if not settings.automated_tax:
        # Ours is the tax: sent explicitly, it overrides anything QuickBooks would compute.
        body["TxnTaxDetail"] = {"TotalTax": Decimal(getattr(invoice, "tax_total", None) or 0)}
    return body


def expected_total(lines: Iterable[LineLike]) -> Decimal:
    return sum((Decimal(ln.amount) for ln in lines), Decimal("0"))


def contact_to_qbo(
    name: str,
    email: str | None = None,
    *,
    taxable: bool | None = None,
    exemption_reason: int | None = None,
    phone: str | None = None,
    address: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"DisplayName": clean_name(name, DISPLAY_NAME_MAX)}
    if email:
        body["PrimaryEmailAddr"] = {"Address": email}
    # issue 17: the contact details the billing page shows; an address's lines are
    # BillAddr's Line1-Line5 (the API checked there are at most five)
    if phone:
        body["PrimaryPhone"] = {"FreeFormNumber": phone}
    if address:
        lines = [ln for ln in address.splitlines() if ln.strip()][:5]
        body["BillAddr"] = {f"Line{n}": line for n, line in enumerate(lines, start=1)}
    if taxable is not None:
        # issue 15: a tax-exempt contact is a non-taxable customer (Intuit, Customer.Taxable: "if
        # true, transactions for this customer are taxable"): automated sales tax taxes none of
        # its lines. Sent only for contacts given a tax setting here (QuickBooks' own otherwise).
        body["Taxable"] = taxable
    if taxable is False and exemption_reason is not None:
        # Intuit, Customer entity: TaxExemptionReasonId (ids 1-15, domain/tax.EXEMPTION_REASONS),
        # applicable with automated sales tax; a reason only goes with Taxable false
        body["TaxExemptionReasonId"] = exemption_reason
    return body


# ---- issue 17: a QuickBooks customer's phone and BillAddr coming in (inverse of contact_to_qbo)
ADDRESS_LINES_MAX = 5  # our address is 1-5 lines, as BillAddr's Line1-Line5 going out


def phone_from_qbo(phone: Mapping[str, Any] | None) -> str | None:
    number = str((phone or {}).get("FreeFormNumber") or "").strip()
    return number or None


def address_from_qbo(addr: Mapping[str, Any] | None) -> str | None:
    """BillAddr as our address lines: Line1-5, then "City, ST 12345", then Country, so nothing
    QuickBooks holds is lost; more than five lines fold into the fifth. What contact_to_qbo sent
    (lines only) comes back as exactly the text it was, so a round trip changes nothing."""
    if not addr:
        return None

    def text(key: str) -> str:
        return str(addr.get(key) or "").strip()

    lines = [t for n in range(1, 6) if (t := text(f"Line{n}"))]
    region = " ".join(t for t in (text("CountrySubDivisionCode"), text("PostalCode")) if t)
    locality = ", ".join(t for t in (text("City"), region) if t)
    lines += [t for t in (locality, text("Country")) if t]
    if len(lines) > ADDRESS_LINES_MAX:
        lines[ADDRESS_LINES_MAX - 1 :] = [", ".join(lines[ADDRESS_LINES_MAX - 1 :])]
    return "\n".join(lines) or None


def product_to_qbo(
    name: str,
    kind: str,
    unit_price: Decimal | None,
    income_account: str | None,
    expense_account: str | None = None,
) -> dict[str, Any]:
    """Items we create are Service or NonInventory (inventory stays in QuickBooks' hands)."""
    if not income_account:
        raise MappingError("an income account is required to create an item", "IncomeAccountRef")
    body: dict[str, Any] = {
        "Name": clean_name(name, ITEM_NAME_MAX),
        "Type": "Service" if kind == "service" else "NonInventory",
        "IncomeAccountRef": {"value": income_account},
    }
    if unit_price is not None:
        body["UnitPrice"] = Decimal(unit_price)
    if expense_account and kind != "service":
        body["ExpenseAccountRef"] = {"value": expense_account}
    return body
