"""Where a new invoice goes: the ONE resolver every path that creates invoices asks.

QuickBooks for a company that uses it (connected, or waiting for a reconnect: its work is parked
until then), local otherwise. A choice of QuickBooks without a connection is refused (422).
It reads the connection from the store only: the run steps and the API import it, and neither
should load the sync flow (qbo_sync/, queues) or intuitlib for a look-up.
"""

from __future__ import annotations

from dataclasses import dataclass

from fieldbill.domain.errors import ValidationError
from fieldbill.domain.model import Destination
from fieldbill.domain.tax import DEFAULT_TAXABLE_KINDS, TaxRules
from fieldbill.store import connections, numbering, tax_codes

# A company that needs reconnecting still uses QuickBooks: its work is queued and parked until then.
USES_QUICKBOOKS = ("connected", "needs_reconnect")


def connection_status(tenant_id: str) -> str:
    """connected | needs_reconnect | disconnected (also when the tenant never connected)."""
    record = connections.get(tenant_id, consistent=False)
    return str(record.status) if record is not None else "disconnected"


def uses_quickbooks(tenant_id: str) -> bool:
    return connection_status(tenant_id) in USES_QUICKBOOKS


def resolve(tenant_id: str, chosen: Destination | None = None) -> Destination:
    """The destination of invoices about to be created for `tenant_id`."""
    if chosen is None:
        return Destination.QUICKBOOKS if uses_quickbooks(tenant_id) else Destination.LOCAL
    if chosen is Destination.QUICKBOOKS and not uses_quickbooks(tenant_id):
        raise ValidationError(
            "destination", "QuickBooks is not connected: connect it (GET /quickbooks/connect) or choose local"
        )
    return chosen


# ---------------------------------------------------------------------------- numbering and tax (issue 15)
@dataclass(frozen=True, slots=True)
class InvoiceRules:
    """How new invoices of a tenant are numbered and taxed (read once per generate page)."""

    numbering: numbering.Mode
    tax: TaxRules


def invoice_rules(tenant_id: str, destination: Destination) -> InvoiceRules:
    """Numbering: local invoices are numbered by us (nobody else will); QuickBooks ones with custom
    transaction numbers on by us too (sent as DocNumber: QuickBooks leaves it blank otherwise);
    off, QuickBooks numbers them and the sync stores its DocNumber (qbo_doc_number).
    Tax: the tenant's default tax code on the lines the company taxes (domain/tax.py); since issue
    15 also its contacts' and products' own choices (store/tax_codes: read as asked, or in a batch
    with tax_codes.prefetch), so every caller's tax.apply resolves line > product > contact >
    tenant default."""
    record = connections.get(tenant_id, consistent=False)
    settings = record.settings.as_dict() if record is not None and record.settings else {}
    kinds = settings.get("taxable_line_kinds")
    taxable_kinds = tuple(str(k) for k in kinds) if kinds is not None else DEFAULT_TAXABLE_KINDS
    custom = bool(settings.get("custom_txn_numbers"))
    mode = (
        numbering.Mode.AUTOMATIC_FIXED if destination is Destination.LOCAL or custom else numbering.Mode.NONE
    )
    return InvoiceRules(mode, tax_codes.rules(tenant_id, taxable_kinds))


def tax_rules(tenant_id: str) -> TaxRules:
    """The tax rules of invoice_rules alone: what an invoice edit resolves its changed lines by
    (issue 15), so an edited line is taxed exactly as on a new invoice."""
    return invoice_rules(tenant_id, Destination.LOCAL).tax


# ---- issue 17: a completed service's destination ------------------------------------------------
# Its own billing status, else its service type's default (both kept on its billable items when it
# is completed), else the company's default invoice type (billing settings), else by connection.
def company_default(tenant_id: str, settings_default: str | None) -> str:
    """The company's default invoice type: qbo | qbd | local."""
    if settings_default:
        return settings_default
    return "qbo" if uses_quickbooks(tenant_id) else "local"


def service_destination(billing_status: str | None, company: str, quickbooks_connected: bool) -> Destination:
    """Where a service's invoice goes (an Unbillable service is never invoiced: 422)."""
    from fieldbill.domain import service_pricing as sp

    status = sp.resolve_billing_status(billing_status, None, company)
    if status is sp.BillingStatus.UNBILLABLE:
        raise ValidationError("billing_status", "an unbillable service is never invoiced")
    destination = sp.DESTINATIONS[status]
    if destination is Destination.QUICKBOOKS and not quickbooks_connected:
        raise ValidationError(
            "destination", "QuickBooks is not connected: connect it (GET /quickbooks/connect) or bill locally"
        )
    return destination
