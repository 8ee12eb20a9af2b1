"""Job invoices in accounting (issue 14): settings, numbering, backdating, GL distribution,
export files (CSV, IIF) and the journal of posted invoices. Pure: the store and the workflow
hand in plain values.

Distribution: an invoice is fully distributed when its entries balance (debits = credits) and
the receivable account carries exactly the invoice total (a debit, or a credit for a negative
correction). The default distribution debits receivables with the total and credits each line's
account: deposits and deposits applied to the deposit account (a liability), a category's lines
to the category's account, everything else to the income account.
"""

from __future__ import annotations

import csv
import enum
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from fieldbill.domain import money
from fieldbill.domain.errors import ValidationError
from fieldbill.domain.job_policies import JobLineKind

ZERO = Decimal("0")


class NumberingMode(enum.StrEnum):
    NONE = "none"  # no number
    AUTOMATIC = "automatic"  # the next number of the tenant's sequence, or one a person gives
    AUTOMATIC_FIXED = "automatic_fixed"  # always the next number; none may be given


@dataclass(frozen=True, slots=True, kw_only=True)
class JobBillingSettings:
    numbering: NumberingMode = NumberingMode.AUTOMATIC
    backdating_days: int = 30
    accounting_integration: bool = False
    receivable_account: str = "Accounts Receivable"
    income_account: str = "Sales"
    deposit_account: str = "Customer Deposits"
    category_accounts: Mapping[str, str] = field(default_factory=dict)
    # issue 15: a job invoice's sales tax is owed to the tax authority, not income (a liability)
    sales_tax_account: str = "Sales Tax Payable"

    def __post_init__(self) -> None:
        object.__setattr__(self, "numbering", NumberingMode(self.numbering))
        if self.backdating_days < 0:
            raise ValidationError("backdating_days", "must not be negative")


def check_issue_date(issue_date: date, today: date, settings: JobBillingSettings) -> None:
    """An invoice is dated today or up to `backdating_days` before it, never in the future."""
    earliest = today - timedelta(days=settings.backdating_days)
    if issue_date < earliest:
        raise ValidationError(
            "issue_date", f"may be backdated at most {settings.backdating_days} day(s): not before {earliest}"
        )
    if issue_date > today:
        raise ValidationError("issue_date", "must not be in the future")


NUMBERING_MODES = {
    # the tenant's setting -> store/numbering.Mode's value (the tenant-wide invoice sequence)
    NumberingMode.NONE: "none",
    NumberingMode.AUTOMATIC: "automatic_overridable",
    NumberingMode.AUTOMATIC_FIXED: "automatic_fixed",
}


# ---------------------------------------------------------------------------- distribution
@dataclass(frozen=True, slots=True)
class Entry:
    account: str
    debit: Decimal = ZERO
    credit: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class LineView:
    kind: str
    amount: Decimal
    category: str | None = None
    taxable: bool = False


def line_account(line: LineView, settings: JobBillingSettings) -> str:
    if line.kind in (JobLineKind.DEPOSIT, JobLineKind.DEPOSIT_APPLIED):
        return settings.deposit_account
    if line.category and line.category in settings.category_accounts:
        return settings.category_accounts[line.category]
    return settings.income_account


def default_distribution(
    lines: Sequence[LineView], settings: JobBillingSettings, tax_total: Decimal = ZERO
) -> list[Entry]:
    """Receivables carry the total (with its tax, issue 15); each line's account its amount; the
    tax is credited to the sales tax account (debited back by a negative correction)."""
    net: dict[str, Decimal] = {}
    for line in lines:
        account = line_account(line, settings)
        net[account] = net.get(account, ZERO) + line.amount
    if tax_total:
        net[settings.sales_tax_account] = net.get(settings.sales_tax_account, ZERO) + tax_total
    total = sum((ln.amount for ln in lines), ZERO) + tax_total
    entries = [_signed(settings.receivable_account, total)]
    entries += [_signed(account, -amount) for account, amount in net.items() if amount]
    return entries


def _signed(account: str, debit: Decimal) -> Entry:
    return Entry(account, debit=debit, credit=ZERO) if debit >= 0 else Entry(account, credit=-debit)


def check_distribution(entries: Sequence[Entry], total: Decimal, settings: JobBillingSettings) -> None:
    """Approval needs a full distribution: debits = credits, receivables = the invoice total."""
    if not entries:
        raise ValidationError("distribution", "an approved invoice is distributed to GL accounts")
    for n, entry in enumerate(entries):
        if not entry.account:
            raise ValidationError(f"distribution.{n}.account", "is required")
        if entry.debit < 0 or entry.credit < 0 or (entry.debit and entry.credit):
            raise ValidationError(f"distribution.{n}", "a debit or a credit, not negative, not both")
    debits = sum((e.debit for e in entries), ZERO)
    credits = sum((e.credit for e in entries), ZERO)
    if money.cents(debits) != money.cents(credits):
        raise ValidationError("distribution", f"debits {debits} must equal credits {credits}")
    receivable = sum((e.debit - e.credit for e in entries if e.account == settings.receivable_account), ZERO)
    if receivable != total:
        raise ValidationError(
            "distribution",
            f"{settings.receivable_account} carries {receivable}; the invoice total is {total}",
        )


# ---------------------------------------------------------------------------- export files
@dataclass(frozen=True, slots=True)
class ExportInvoice:
    id: str
    number: str | None
    issue_date: date
    customer: str
    job_id: str
    invoice_type: str
    total: Decimal
    entries: Sequence[Entry]


def to_csv(invoices: Iterable[ExportInvoice]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["invoice_id", "number", "date", "customer", "job_id", "type", "account", "debit", "credit"]
    )
    for inv in invoices:
        for e in inv.entries:
            writer.writerow(
                [
                    inv.id,
                    inv.number or "",
                    inv.issue_date.isoformat(),
                    inv.customer,
                    inv.job_id,
                    inv.invoice_type,
                    e.account,
                    format(e.debit, "f"),
                    format(e.credit, "f"),
                ]
            )
    return out.getvalue()


def _iif_text(value: str) -> str:
    # IIF is tab-separated lines: a tab or line break inside a field would shift the columns.
    return " ".join(str(value).replace("\t", " ").splitlines())


def to_iif(invoices: Iterable[ExportInvoice]) -> str:
    """QuickBooks Desktop's IIF: one TRNS (receivables) and its SPL lines per invoice; a negative
    correction is a CREDIT MEMO. Amounts are signed debits (credits negative)."""
    rows = [
        "!TRNS\tTRNSTYPE\tDATE\tACCNT\tNAME\tAMOUNT\tDOCNUM\tMEMO",
        "!SPL\tTRNSTYPE\tDATE\tACCNT\tNAME\tAMOUNT\tDOCNUM\tMEMO",
        "!ENDTRNS",
    ]
    for inv in invoices:
        kind = "CREDIT MEMO" if inv.total < 0 else "INVOICE"
        day = inv.issue_date.strftime("%m/%d/%Y")
        memo = _iif_text(f"job {inv.job_id} {inv.invoice_type}")
        name, number = _iif_text(inv.customer), _iif_text(inv.number or "")
        head = [e for e in inv.entries if e.debit - e.credit == inv.total][:1] or [inv.entries[0]]
        for tag, entry in [("TRNS", head[0])] + [("SPL", e) for e in inv.entries if e is not head[0]]:
            amount = format(entry.debit - entry.credit, "f")
            rows.append(
                f"{tag}\t{kind}\t{day}\t{_iif_text(entry.account)}\t{name}\t{amount}\t{number}\t{memo}"
            )
        rows.append("ENDTRNS")
    return "\r\n".join(rows) + "\r\n"


# ---------------------------------------------------------------------------- journal
@dataclass(frozen=True, slots=True)
class JournalInvoice:
    id: str
    invoice_type: str
    total: Decimal
    lines: Sequence[LineView]
    entries: Sequence[Entry]


@dataclass(frozen=True, slots=True)
class Journal:
    count: int
    total: Decimal
    by_type: Mapping[str, Decimal]
    taxable: Decimal
    non_taxable: Decimal
    by_account: Mapping[str, tuple[Decimal, Decimal]]  # account -> (debit, credit)


def journal(invoices: Iterable[JournalInvoice]) -> Journal:
    count, total, taxable, non_taxable = 0, ZERO, ZERO, ZERO
    by_type: dict[str, Decimal] = {}
    by_account: dict[str, tuple[Decimal, Decimal]] = {}
    for inv in invoices:
        count += 1
        total += inv.total
        by_type[inv.invoice_type] = by_type.get(inv.invoice_type, ZERO) + inv.total
        for line in inv.lines:
            if line.taxable:
                taxable += line.amount
            else:
                non_taxable += line.amount
        for e in inv.entries:
            debit, credit = by_account.get(e.account, (ZERO, ZERO))
            by_account[e.account] = (debit + e.debit, credit + e.credit)
    return Journal(count, total, by_type, taxable, non_taxable, dict(sorted(by_account.items())))
