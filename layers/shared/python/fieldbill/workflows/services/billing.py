"""The billing page of completed services (issue 17): the grouped view, one customer's invoices,
bulk invoices (an operation), and why a service is not on the page.

Everything reads the item ledger (store/services.services_page: pattern S1 of docs/data-model.md)
and writes through store/billing.write_invoice, so a service is invoiced at most once and comes
back on the page when its invoice is deleted or voided (the ledger's release).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fieldbill.domain import invoicing, tax
from fieldbill.domain import model as dm
from fieldbill.domain import service_pricing as sp
from fieldbill.domain.errors import Conflict, DomainError, NotFound, ValidationError
from fieldbill.store import billing as billing_store
from fieldbill.store import numbering, tax_codes
from fieldbill.store import services as store
from fieldbill.workflows.billing import destination as destinations
from fieldbill.workflows.invoices import commands
from fieldbill.workflows.qbo_sync import enqueue

if TYPE_CHECKING:  # records come from store/ functions; the classes only type them
    from fieldbill.store.models import BillableItem, BillingSettings, Contact

PAGE_CUSTOMERS = 50
PROGRESS_EVERY = 25  # customers between progress writes when customers are selected
# An invoice's items move in the same transaction as the invoice (100 actions at most).
# The invoice's put, and the counter and claim of its number (store/numbering.py).
MAX_ITEMS_PER_INVOICE = billing_store.TRANSACTION_MAX - 1 - billing_store.NUMBERING_PARTS
BillingStatusFilter = Literal["unbilled", "local", "quickbooks", "unbillable"]
RecordId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class Filters(BaseModel):
    """The billing page's filters (also a bulk operation's selection)."""

    model_config = ConfigDict(extra="forbid")

    date_from: date | None = None
    date_to: date | None = None
    billing_status: BillingStatusFilter = "unbilled"
    service_type_ids: list[RecordId] = Field(default_factory=list, max_length=50)
    worker_ids: list[RecordId] = Field(default_factory=list, max_length=50)
    tags: list[Annotated[str, Field(min_length=1, max_length=50)]] = Field(
        default_factory=list, max_length=20
    )
    tag_match: Literal["any", "all"] = "any"


@dataclass
class Context:
    """What a page (or a bulk operation) resolved once: the company default and the connection
    (read only when something needs it: a page whose company default is set reads no connection)."""

    tenant_id: str
    settings: BillingSettings | None
    # What every invoice of a bulk shares is read once, not once per invoice: the rules
    # (connection, tax codes; the contacts' and products' tax choices they cache) per destination,
    # and the invoice counter as our own last write left it (make bench "services": <= 2 requests
    # per invoice).
    rules: dict[dm.Destination, destinations.InvoiceRules] = field(default_factory=dict)
    number_hint: numbering.Hint = field(default_factory=numbering.Hint)

    def rules_for(self, destination: dm.Destination) -> destinations.InvoiceRules:
        if destination not in self.rules:
            self.rules[destination] = destinations.invoice_rules(self.tenant_id, destination)
        return self.rules[destination]

    def prefetch(self, contact_ids: Sequence[str], records: Sequence[BillableItem]) -> None:
        """The tax choices of a page's customers and products in one batch read each."""
        products = [str(r.product_id) for r in records if r.product_id]
        if not self.rules:  # most invoices go where the company's go
            self.rules_for(sp.DESTINATIONS.get(sp.BillingStatus(self.company), dm.Destination.LOCAL))
        for rules in self.rules.values():
            tax_codes.prefetch(rules.tax, contact_ids, products)

    @cached_property
    def connected(self) -> bool:
        return destinations.uses_quickbooks(self.tenant_id)

    @cached_property
    def company(self) -> str:  # qbo | qbd | local
        default = self.settings.default_invoice_type if self.settings is not None else None
        return default or destinations.company_default(self.tenant_id, None)


def _validate(
    tenant_id: str, filters: Filters, extra_contacts: Sequence[str] = ()
) -> tuple[Context, dict[str, Any]]:
    """One batch read: the settings, the filters' service types and workers, and `extra_contacts`;
    a filter value that names nothing is a 422 naming the parameter."""
    if filters.date_from and filters.date_to and filters.date_to < filters.date_from:
        raise ValidationError("date_to", "must not be before date_from")
    found = store.page_context(
        tenant_id, extra_contacts, store.filter_keys(tenant_id, filters.service_type_ids, filters.worker_ids)
    )
    bad_types, bad_workers = store.unknown_filter_values(
        found, tenant_id, filters.service_type_ids, filters.worker_ids
    )
    if bad_types:
        raise ValidationError("service_type", f"no service type {bad_types[0]!r} in this tenant")
    if bad_workers:
        raise ValidationError("worker", f"no worker {bad_workers[0]!r} in this tenant")
    return Context(tenant_id, store.settings_in(found, tenant_id)), found


def validate_filters(tenant_id: str, filters: Filters) -> None:
    _validate(tenant_id, filters)


def _status_query(filters: Filters, company: str) -> tuple[str, Any]:
    status = store.UNBILLABLE if filters.billing_status == "unbillable" else store.PENDING
    statuses: list[str] | None = None
    include_default = False
    if filters.billing_status == "local":
        statuses, include_default = ["local"], company == "local"
    elif filters.billing_status == "quickbooks":
        statuses, include_default = ["qbo", "qbd"], company in ("qbo", "qbd")
    condition = store.service_filters(
        date_from=filters.date_from.isoformat() if filters.date_from else None,
        date_to=filters.date_to.isoformat() if filters.date_to else None,
        service_type_ids=filters.service_type_ids,
        worker_ids=filters.worker_ids,
        billing_statuses=statuses,
        include_company_default=include_default,
    )
    return status, condition


def _tags_match(contact: Contact | None, filters: Filters) -> bool:
    if not filters.tags:
        return True
    tags = set(contact.tags or []) if contact is not None else set()
    wanted = set(filters.tags)
    return wanted <= tags if filters.tag_match == "all" else bool(wanted & tags)


def badge(record: BillableItem, company: str) -> tuple[str, str]:
    """(badge, billing status) of a service line on the page."""
    if record.status == store.UNBILLABLE:
        return sp.BADGES[sp.BillingStatus.UNBILLABLE], "unbillable"
    status = sp.resolve_billing_status(record.billing_status, None, company)
    return sp.BADGES[status], str(status)


# ---------------------------------------------------------------------------- the view
@dataclass
class ServiceRow:
    service_id: str
    service_date: str
    service_type_id: str | None
    service_type: str | None
    worker_ids: list[str]
    workers: list[str]
    amount: Decimal
    badge: str
    billing_status: str
    lines: list[BillableItem] = field(default_factory=list)


@dataclass
class CustomerRow:
    contact: Contact | None
    contact_id: str
    services: list[ServiceRow]

    @property
    def total(self) -> Decimal:
        return sum((s.amount for s in self.services), Decimal("0.00"))


@dataclass
class BillingView:
    customers: list[CustomerRow]
    next_cursor: str | None

    @property
    def total(self) -> Decimal:
        return sum((c.total for c in self.customers), Decimal("0.00"))


def _rows(records: Sequence[BillableItem], company: str) -> dict[str, list[ServiceRow]]:
    by_contact: dict[str, dict[str, ServiceRow]] = {}
    for rec in records:
        services = by_contact.setdefault(rec.contact_id, {})
        visit_id = rec.visit_id or rec.id
        row = services.get(visit_id)
        if row is None:
            name, status = badge(rec, company)
            row = services[visit_id] = ServiceRow(
                service_id=visit_id,
                service_date=rec.work_date,
                service_type_id=rec.service_type_id,
                service_type=rec.service_type_name,
                worker_ids=[str(w) for w in rec.worker_ids or []],
                workers=[str(w) for w in rec.worker_names or []],
                amount=Decimal("0.00"),
                badge=name,
                billing_status=status,
            )
        row.lines.append(rec)
        row.amount += Decimal(rec.amount)
    return {
        c: sorted(s.values(), key=lambda r: (r.service_date, r.service_id)) for c, s in by_contact.items()
    }


def billing_view(
    tenant_id: str, filters: Filters, customers: int = PAGE_CUSTOMERS, cursor: str | None = None
) -> BillingView:
    """One page of customers with their billable services and totals (docs/api.md, "Billing page").

    DynamoDB requests: one batch read (settings, filter values), the item query pages the
    customers' lines take (1 MB each), one batch read of the page's customers."""
    ctx, _ = _validate(tenant_id, filters)
    status, condition = _status_query(filters, ctx.company)
    records, next_cursor = store.services_page(tenant_id, status, condition, customers, cursor)
    rows = _rows(records, ctx.company)
    found = store.page_context(tenant_id, rows) if rows else {}
    contacts = store.contacts_in(found, tenant_id, rows)
    out = [
        CustomerRow(contacts.get(contact_id), contact_id, services)
        for contact_id, services in rows.items()
        if _tags_match(contacts.get(contact_id), filters)
    ]
    return BillingView(out, next_cursor)


# ---------------------------------------------------------------------------- invoices
@dataclass
class InvoiceOptions:
    issue_date: date
    due_date: date | None = None
    terms_days: int | None = None
    send: bool = False
    sync: bool = True


def _net_days(
    options: InvoiceOptions, settings: BillingSettings | None, contact: Contact | None = None
) -> int:
    """Days from the invoice date to its due date: the request's due date or terms, else the
    customer's own terms (`terms_days` of the contact, issue 16), else the company's."""
    if options.due_date is not None:
        days = (options.due_date - options.issue_date).days
        if days < 0:
            raise ValidationError("due_date", "must not be before the invoice date")
        return days
    if options.terms_days is not None:
        return options.terms_days
    if contact is not None and contact.terms_days is not None:
        return int(contact.terms_days)
    return (
        int(settings.default_terms_days)
        if settings is not None and settings.default_terms_days is not None
        else 30
    )


def _chunks(records: Sequence[BillableItem]) -> list[list[BillableItem]]:
    """Invoices of at most MAX_ITEMS_PER_INVOICE items, a service's lines never split."""
    by_visit: dict[str, list[BillableItem]] = {}
    for rec in sorted(records, key=lambda r: (r.work_date, r.id)):
        by_visit.setdefault(rec.visit_id or rec.id, []).append(rec)
    out: list[list[BillableItem]] = [[]]
    for lines in by_visit.values():
        if out[-1] and len(out[-1]) + len(lines) > MAX_ITEMS_PER_INVOICE:
            out.append([])
        out[-1].extend(lines)
    return [c for c in out if c]


def write_customer_invoices(
    tenant_id: str,
    actor: str,
    run_id: str,
    records: Sequence[BillableItem],
    ctx: Context,
    options: InvoiceOptions,
    contact: Contact | None = None,
) -> list[dm.Invoice]:
    """One invoice per destination (more if a destination's lines exceed one transaction), each
    written with its items moved pending -> invoiced in one transaction (Conflict if another
    invoice took one first)."""
    net = _net_days(options, ctx.settings, contact)
    by_destination: dict[dm.Destination, list[BillableItem]] = {}
    for rec in records:
        destination = destinations.service_destination(rec.billing_status, ctx.company, ctx.connected)
        by_destination.setdefault(destination, []).append(rec)
    written: list[dm.Invoice] = []
    for destination in sorted(by_destination, key=str):
        # Numbered and taxed as every new invoice is (the tenant's sequence, its default tax code).
        rules = ctx.rules_for(destination)
        tax_codes.prefetch(rules.tax, [r.contact_id for r in records], [str(r.product_id) for r in records])
        for part in _chunks(by_destination[destination]):
            items = [billing_store.item_to_domain(r) for r in part]
            invoice = invoicing.build_invoice(
                items,
                run_id=run_id,
                grouping=dm.GroupingMode.PER_CONTACT,
                issue_date=options.issue_date,
                net_days=net,
                destination=destination,
            )
            invoice = tax.apply(invoice, rules.tax)
            billing_store.write_invoice(invoice, part, actor, rules.numbering, ctx.number_hint)
            written.append(invoice)
    return written


def _after_write(
    tenant_id: str, actor: str, run_id: str, invoices: Sequence[dm.Invoice], options: InvoiceOptions
) -> dict[str, dict[str, str] | None]:
    """QuickBooks Online invoices go there at once (as generated invoices do); QuickBooks Desktop
    invoices wait for the Desktop connection. Saved and sent: each invoice goes out by the invoice
    lifecycle's own send (POST /invoices/{id}/send: email with its PDF, or QuickBooks' email when
    the company chose it), after its sync was queued. Each sent invoice's id -> None, or the error
    that kept it a draft (the invoice stays saved: sending it again is POST /invoices/{id}/send)."""
    if options.sync and any(i.destination is dm.Destination.QUICKBOOKS for i in invoices):
        more = True
        while more:
            count, more = enqueue.enqueue_not_synced(tenant_id, run_id, actor)
            more = more and count > 0
    outcome: dict[str, dict[str, str] | None] = {}
    if options.send:
        from fieldbill.mail.errors import MailError  # lazy: only a send needs the mail adapter

        for invoice in invoices:
            try:
                commands.send(tenant_id, invoice.id, actor)
                outcome[invoice.id] = None
            except (DomainError, MailError) as exc:
                outcome[invoice.id] = _error(exc)
    return outcome


def check_sendable_to(contact: Contact) -> None:
    """Save and send needs somewhere to send: refused before anything is written."""
    if not (contact.email or "").strip():
        raise ValidationError(
            "send", f"customer {contact.id!r} has no email address: save as draft, or give the contact one"
        )


def invoice_customer(
    tenant_id: str,
    actor: str,
    contact_id: str,
    options: InvoiceOptions,
    service_ids: Sequence[str] = (),
    filters: Filters | None = None,
) -> tuple[list[dm.Invoice], dict[str, dict[str, str] | None]]:
    """Invoice all (or the listed) billable services of one customer: its invoices, and when
    sent, each one's send outcome (None: sent)."""
    filters = filters or Filters()
    ctx, found = _validate(tenant_id, filters, [contact_id])
    contact = store.contacts_in(found, tenant_id, [contact_id]).get(contact_id)
    if contact is None:
        raise NotFound("contact", contact_id)
    if options.send:
        check_sendable_to(contact)
    _, condition = _status_query(filters.model_copy(update={"billing_status": "unbilled"}), ctx.company)
    if service_ids:
        condition &= store.service_filters(visit_ids=service_ids)
    records, _ = store.services_page(tenant_id, store.PENDING, condition, 1, None, contact_id=contact_id)
    missing = sorted(set(service_ids) - {r.visit_id for r in records})
    if missing:
        raise Conflict(
            f"service {missing[0]!r} is not billable for contact {contact_id!r}"
            f" (GET /services/{missing[0]}/billing-status says why)"
        )
    if not records:
        raise Conflict(f"contact {contact_id!r} has no billable services")
    run_id = f"svc-{uuid.uuid4().hex}"
    invoices = write_customer_invoices(tenant_id, actor, run_id, records, ctx, options, contact)
    return invoices, _after_write(tenant_id, actor, run_id, invoices, options)


# ---------------------------------------------------------------------------- bulk (an operation)
class BulkServicesRequest(BaseModel):
    """Selected customers (or every customer matching the filters) each get their invoices."""

    model_config = ConfigDict(extra="forbid")

    contact_ids: list[RecordId] | None = Field(default=None, min_length=1, max_length=500)
    filters: Filters = Field(default_factory=Filters)
    issue_date: date | None = None
    due_date: date | None = None
    terms_days: int | None = Field(default=None, ge=0, le=3650)
    send: bool = False
    sync: bool = True


def _error(exc: Exception) -> dict[str, str]:
    error = {"type": type(exc).__name__, "message": str(exc)[:500]}
    if isinstance(exc, ValidationError):
        error["field"] = exc.field
    return error


def run_bulk(
    tenant_id: str,
    actor: str,
    operation_id: str,
    request: BulkServicesRequest,
    progress: Callable[[dict[str, Any]], None],
) -> dict[str, Any]:
    """Each customer's invoices on their own: a customer that fails is reported and the others go
    on. The run id is the operation's, so a redelivered message writes the same invoices (their
    ids are deterministic) and bills nothing twice."""
    if request.filters.billing_status == "unbillable":
        raise ValidationError("filters.billing_status", "unbillable services are never invoiced")
    run_id = f"op-{operation_id}"
    options = InvoiceOptions(
        issue_date=request.issue_date or date.today(),
        due_date=request.due_date,
        terms_days=request.terms_days,
        send=request.send,
        sync=request.sync,
    )
    results: list[dict[str, Any]] = []
    invoices: list[dm.Invoice] = []

    def one(contact_id: str, records: Sequence[BillableItem], ctx: Context, contact: Contact | None) -> None:
        try:
            if not records:
                results.append({"contact_id": contact_id, "status": "nothing_to_bill", "invoice_ids": []})
                return
            written = write_customer_invoices(tenant_id, actor, run_id, records, ctx, options, contact)
        except (DomainError, ValueError) as exc:
            results.append(
                {"contact_id": contact_id, "status": "failed", "invoice_ids": [], "error": _error(exc)}
            )
            return
        invoices.extend(written)
        results.append(
            {"contact_id": contact_id, "status": "invoiced", "invoice_ids": [i.id for i in written]}
        )

    filters = request.filters
    if request.contact_ids:
        wanted = list(dict.fromkeys(request.contact_ids))
        ctx, found = _validate(tenant_id, filters, wanted)
        _, condition = _status_query(filters, ctx.company)
        contacts = store.contacts_in(found, tenant_id, wanted)
        for contact_id in wanted:
            if contact_id not in contacts:
                results.append(
                    {
                        "contact_id": contact_id,
                        "status": "failed",
                        "invoice_ids": [],
                        "error": {"type": "NotFound", "message": f"no contact {contact_id!r}"},
                    }
                )
                continue
            records, _ = store.services_page(
                tenant_id, store.PENDING, condition, 1, None, contact_id=contact_id
            )
            one(contact_id, records, ctx, contacts[contact_id])
            if len(results) % PROGRESS_EVERY == 0:
                progress(_summary(results))
    else:
        ctx, _ = _validate(tenant_id, filters)
        _, condition = _status_query(filters, ctx.company)
        cursor: str | None = None
        while True:
            records, cursor = store.services_page(tenant_id, store.PENDING, condition, PAGE_CUSTOMERS, cursor)
            by_contact: dict[str, list[BillableItem]] = {}
            for rec in records:
                by_contact.setdefault(rec.contact_id, []).append(rec)
            ctx.prefetch(list(by_contact), records)
            page_contacts: dict[str, Contact] = {}
            if by_contact:  # their tags (the filter) and terms (the due date): one batch read
                found = store.page_context(tenant_id, by_contact)
                page_contacts = store.contacts_in(found, tenant_id, by_contact)
            for contact_id, lines in by_contact.items():
                if _tags_match(page_contacts.get(contact_id), filters):
                    one(contact_id, lines, ctx, page_contacts.get(contact_id))
            progress(_summary(results))
            if not cursor:
                break
    sent = _after_write(tenant_id, actor, run_id, invoices, options)
    if options.send:  # each customer's result says which of its invoices went out, or why not
        for result in results:
            ids = result["invoice_ids"]
            result["sent"] = [i for i in ids if i in sent and sent[i] is None]
            error = next((sent[i] for i in ids if sent.get(i) is not None), None)
            if error is not None:
                result["send_error"] = error
    return _summary(results)


def _summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "customers": len(results),
        "invoiced": sum(1 for r in results if r["status"] == "invoiced"),
        "failed": sum(1 for r in results if r["status"] == "failed"),
        "invoices": sum(len(r["invoice_ids"]) for r in results),
        "results": list(results),
    }


# ---------------------------------------------------------------------------- troubleshooting
@dataclass
class BillingStatusAnswer:
    service_id: str
    appears: bool
    reason: str  # billable | not_completed | not_billable | outside_range | invoiced | nothing_to_bill
    message: str
    badge: str | None = None
    invoice_ids: list[str] = field(default_factory=list)
    invoice_numbers: list[str] = field(default_factory=list)


def billing_status(
    tenant_id: str, service_id: str, date_from: date | None = None, date_to: date | None = None
) -> BillingStatusAnswer:
    """Why a service is (or is not) on the billing page."""
    visit = store.get_visit(tenant_id, service_id)
    if visit.status != "completed":
        return BillingStatusAnswer(
            service_id, False, "not_completed", "the service is not marked completed yet"
        )
    items = store.visit_items(tenant_id, visit)
    if not items:
        return BillingStatusAnswer(
            service_id, False, "nothing_to_bill", "the service priced at $0 and its lines were removed"
        )
    invoiced = sorted({i.invoice_id for i in items if i.status == "invoiced" and i.invoice_id})
    if invoiced:
        found = billing_store.invoices_by_id(tenant_id, invoiced)
        numbers = [str(found[i].number or found[i].qbo_doc_number or i) for i in invoiced if i in found]
        return BillingStatusAnswer(
            service_id,
            False,
            "invoiced",
            f"already invoiced on invoice {', '.join(numbers) or ', '.join(invoiced)}",
            invoice_ids=invoiced,
            invoice_numbers=numbers,
        )
    if all(i.status in ("unbillable", "void") for i in items):
        return BillingStatusAnswer(
            service_id,
            False,
            "not_billable",
            "the service is marked Unbillable (not billable)",
            badge="Unbillable",
        )
    day = visit.service_date
    if (date_from and day < date_from.isoformat()) or (date_to and day > date_to.isoformat()):
        return BillingStatusAnswer(
            service_id, False, "outside_range", f"its service date {day} is outside the date range"
        )
    settings = store.get_settings(tenant_id)
    company = destinations.company_default(tenant_id, settings.default_invoice_type if settings else None)
    pending = [i for i in items if i.status == "pending"]
    name, _ = badge(pending[0], company)
    return BillingStatusAnswer(service_id, True, "billable", "the service is on the billing page", badge=name)
