"""Recurring billing access patterns (issue 16): bill profiles, recurring services, the accounts of
a profile, everything a period's run reads (in a handful of requests, whatever the number of
accounts), and the bill-once write of a period invoice.

Bill once for periods: the invoice id is derived from (tenant, profile, period, account)
(domain/recurring.period_invoice_id) and put only if it does not exist, in ONE transaction with
its new recurring charges (put only if they do not exist) and its pending items (moved only if
still pending). A second run, two runs at once, a retry after a crash: the put is refused and
nothing is written twice. No read decides it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from fieldbill.clock import now, now_iso
from fieldbill.domain import model as dm
from fieldbill.domain import recurring, tax
from fieldbill.domain.errors import Conflict, NotFound
from fieldbill.domain.states import ITEM_MACHINE
from fieldbill.store import account_balances, billing, common, tax_codes, transitions
from fieldbill.store import numbering as numbers
from fieldbill.store.models import (
    META,
    BillableItem,
    BillProfile,
    Contact,
    Entity,
    Invoice,
    PeriodPreview,
    Product,
    RecurringService,
)

PREVIEW_DAYS = 1
# Accounts a preview keeps per item: an account's inputs are about 50 characters, so 2,000 of
# them stay well inside DynamoDB's 400 KB item limit.
PREVIEW_PART_ACCOUNTS = 2000


# ---------------------------------------------------------------------------- bill profiles
def profile_to_domain(rec: BillProfile) -> recurring.BillProfile:
    return recurring.BillProfile(
        id=rec.id,
        name=rec.name,
        cadence=rec.cadence,  # type: ignore[arg-type]
        start_date=date.fromisoformat(rec.start_date),
        billing_day=int(rec.billing_day),
        every_weeks=int(rec.every_weeks),
        terms_days=int(rec.terms_days),
        skip_zero=bool(rec.skip_zero),
    )


def create_profile(tenant_id: str, profile: recurring.BillProfile, actor: str) -> BillProfile:
    record = BillProfile(
        BillProfile.key(tenant_id, profile.id),
        META,
        tenant_id=tenant_id,
        id=profile.id,
        gsi1pk=BillProfile.list_key(tenant_id),
        gsi1sk=f"{profile.name.lower()}#{profile.id}",
        name=profile.name,
        cadence=str(profile.cadence),
        start_date=profile.start_date.isoformat(),
        billing_day=profile.billing_day,
        every_weeks=profile.every_weeks,
        terms_days=profile.terms_days,
        skip_zero=profile.skip_zero,
    )
    common.create(record, actor, reason="bill profile created")
    return record


def get_profile(tenant_id: str, profile_id: str) -> BillProfile:
    return common.get(BillProfile, BillProfile.key(tenant_id, profile_id), entity="bill profile")


def update_profile(tenant_id: str, profile_id: str, changes: dict[str, object], actor: str) -> BillProfile:
    """Name, terms or skip $0 default; 404 when the profile does not exist."""
    record = get_profile(tenant_id, profile_id)
    actions: list[Action] = [BillProfile.updated_at.set(now_iso())]
    if "name" in changes:
        name = str(changes["name"])
        actions += [BillProfile.name.set(name), BillProfile.gsi1sk.set(f"{name.lower()}#{profile_id}")]
    if "terms_days" in changes:
        actions.append(BillProfile.terms_days.set(int(str(changes["terms_days"]))))
    if "skip_zero" in changes:
        actions.append(BillProfile.skip_zero.set(bool(changes["skip_zero"])))
    said = ", ".join(f"{k} {v}" for k, v in sorted(changes.items()))
    actions.append(
        BillProfile.history.set(
            BillProfile.history.append([common.history_entry(actor, None, "updated", said)])
        )
    )
    record.update(actions=actions, condition=Entity.pk.exists())
    return record


def list_profiles(tenant_id: str, limit: int, cursor: str | None) -> tuple[list[BillProfile], str | None]:
    key = BillProfile.list_key(tenant_id)
    return common.list_by_gsi1(BillProfile, key, limit, common.checked_cursor(cursor, gsi1pk=key))


def get_contact(tenant_id: str, contact_id: str) -> Contact:
    return common.get(Contact, Contact.key(tenant_id, contact_id), entity="contact")


def set_contact_profile(
    tenant_id: str, contact_id: str, profile_id: str | None, terms_days: int | None, actor: str
) -> Contact:
    """An account's bill profile (one) and its own Net-N; the profile must exist."""
    if profile_id is not None:
        get_profile(tenant_id, profile_id)
    contact = common.get(Contact, Contact.key(tenant_id, contact_id), entity="contact")
    actions: list[Action] = [
        Contact.bill_profile_id.set(profile_id) if profile_id else Contact.bill_profile_id.remove(),
        Contact.terms_days.set(terms_days) if terms_days is not None else Contact.terms_days.remove(),
        Contact.updated_at.set(now_iso()),
        Contact.history.set(
            Contact.history.append(
                [common.history_entry(actor, None, "updated", f"bill profile {profile_id or 'none'}")]
            )
        ),
    ]
    contact.update(actions=actions, condition=Entity.pk.exists())
    return contact


# ---------------------------------------------------------------------------- recurring services
def service_to_domain(rec: RecurringService) -> recurring.RecurringService:
    return recurring.RecurringService(
        id=rec.id,
        contact_id=rec.contact_id,
        name=rec.name,
        product_id=rec.product_id,
        product_name=rec.product_name,
        rate=Decimal(rec.rate),
        basis=rec.basis,  # type: ignore[arg-type]
        start_date=date.fromisoformat(rec.start_date),
        end_date=date.fromisoformat(rec.end_date) if rec.end_date else None,
        visit_weekday=int(rec.visit_weekday) if rec.visit_weekday is not None else None,
    )


def create_service(tenant_id: str, service: recurring.RecurringService, actor: str) -> RecurringService:
    common.get(Contact, Contact.key(tenant_id, service.contact_id), entity="contact")
    record = RecurringService(
        RecurringService.key(tenant_id, service.id),
        META,
        tenant_id=tenant_id,
        id=service.id,
        gsi1pk=RecurringService.list_key(tenant_id),
        gsi1sk=RecurringService.list_sort_key(service.contact_id, service.id),
        contact_id=service.contact_id,
        name=service.name,
        product_id=service.product_id,
        product_name=service.product_name,
        rate=service.rate,
        basis=str(service.basis),
        start_date=service.start_date.isoformat(),
        end_date=service.end_date.isoformat() if service.end_date else None,
        visit_weekday=service.visit_weekday,
    )
    common.create(record, actor, reason="recurring service started")
    return record


def get_service(tenant_id: str, service_id: str) -> RecurringService:
    return common.get(
        RecurringService, RecurringService.key(tenant_id, service_id), entity="recurring service"
    )


def end_service(tenant_id: str, service_id: str, end: date, actor: str) -> RecurringService:
    record = get_service(tenant_id, service_id)
    record.update(
        actions=[
            RecurringService.end_date.set(end.isoformat()),
            RecurringService.updated_at.set(now_iso()),
            RecurringService.history.set(
                RecurringService.history.append([common.history_entry(actor, None, "ended", f"ends {end}")])
            ),
        ],
        condition=Entity.pk.exists(),
    )
    return record


def list_services(
    tenant_id: str, limit: int, cursor: str | None, contact_id: str | None = None
) -> tuple[list[RecurringService], str | None]:
    key = RecurringService.list_key(tenant_id)
    return common.list_by_gsi1(
        RecurringService,
        key,
        limit,
        common.checked_cursor(cursor, gsi1pk=key),
        prefix=f"{contact_id}#" if contact_id else None,
    )


def product_name(tenant_id: str, product_id: str) -> str:
    record = common.find(Product, Product.key(tenant_id, product_id))
    if record is None:
        raise NotFound("product", product_id)
    return str(record.name)


# ---------------------------------------------------------------------------- what a run reads
@dataclass
class RunData:
    accounts: list[recurring.AccountInput]
    unmapped_products: frozenset[str]


def load_run_data(tenant_id: str, profile_id: str, tax_rules: tax.TaxRules | None = None) -> RunData:
    """Every account of the profile with its services, pending items and balance: one query per
    kind (a request per MB), never one per account. `tax_rules` learn the tax choices of the
    contacts and products read here, so planning reads none of them again."""
    contacts: dict[str, Contact] = {}
    query = Entity.gsi1.query(
        Contact.list_key(tenant_id), filter_condition=Contact.bill_profile_id == profile_id
    )
    for rec in query:
        if isinstance(rec, Contact):
            contacts[rec.id] = rec
    services: dict[str, list[recurring.RecurringService]] = {}
    for rec in Entity.gsi1.query(RecurringService.list_key(tenant_id)):
        if isinstance(rec, RecurringService) and rec.contact_id in contacts:
            services.setdefault(rec.contact_id, []).append(service_to_domain(rec))
    pending: dict[str, list[dm.BillableItem]] = {}
    for rec in Entity.gsi1.query(BillableItem.status_key(tenant_id, "pending")):
        if isinstance(rec, BillableItem) and rec.contact_id in contacts:
            pending.setdefault(rec.contact_id, []).append(billing.item_to_domain(rec))
    balances = account_balances.all_balances(tenant_id)
    products = [r for r in Entity.gsi1.query(Product.list_key(tenant_id)) if isinstance(r, Product)]
    unmapped = frozenset(r.id for r in products if not r.qbo_id)
    if tax_rules is not None:
        tax_codes.remember(tax_rules, contacts.values(), products)
    accounts = [
        recurring.AccountInput(
            contact_id=c.id,
            name=c.name,
            services=tuple(services.get(c.id, ())),
            pending=tuple(pending.get(c.id, ())),
            balance=balances.get(c.id, Decimal("0")),
            terms_days=int(c.terms_days) if c.terms_days is not None else None,
            linked_to_quickbooks=bool(c.qbo_id),
        )
        for c in contacts.values()
    ]
    return RunData(accounts, unmapped)


def load_account_data(tenant_id: str, profile_id: str, contact_id: str) -> RunData:
    """What `load_run_data` reads, for ONE account of the profile (regenerating its draft): its
    services and pending items by their contact-prefixed sort keys, its balance, the products'
    mappings; a handful of small requests instead of the whole profile's."""
    contact = common.find(Contact, Contact.key(tenant_id, contact_id))
    if contact is None or contact.bill_profile_id != profile_id:
        return RunData([], frozenset())
    prefix = f"{contact_id}#"
    services = [
        service_to_domain(r)
        for r in Entity.gsi1.query(RecurringService.list_key(tenant_id), Entity.gsi1sk.startswith(prefix))
        if isinstance(r, RecurringService) and r.contact_id == contact_id
    ]
    pending = [
        billing.item_to_domain(r)
        for r in Entity.gsi1.query(
            BillableItem.status_key(tenant_id, "pending"), Entity.gsi1sk.startswith(prefix)
        )
        if isinstance(r, BillableItem) and r.contact_id == contact_id
    ]
    products = [r for r in Entity.gsi1.query(Product.list_key(tenant_id)) if isinstance(r, Product)]
    account = recurring.AccountInput(
        contact_id=contact.id,
        name=contact.name,
        services=tuple(services),
        pending=tuple(pending),
        balance=account_balances.balance_of(tenant_id, contact_id),
        terms_days=int(contact.terms_days) if contact.terms_days is not None else None,
        linked_to_quickbooks=bool(contact.qbo_id),
    )
    return RunData([account], frozenset(r.id for r in products if not r.qbo_id))


def existing_items(tenant_id: str, item_ids: Iterable[str]) -> dict[str, BillableItem]:
    """Recurring charges that are billable items already (an earlier run; its invoice deleted)."""
    return billing.items_by_id(tenant_id, item_ids)


def item_stub(tenant_id: str, item_id: str) -> BillableItem:
    """A pending item to move by key (its write is conditional on it still being pending)."""
    return BillableItem(
        BillableItem.key(tenant_id, item_id), META, tenant_id=tenant_id, id=item_id, status="pending"
    )


# ---------------------------------------------------------------------------- previews
def save_preview(
    tenant_id: str, fingerprint: str, accounts: dict[str, str], parameters: dict[str, str] | None = None
) -> None:
    """What a preview showed: each account's inputs (in parts of PREVIEW_PART_ACCOUNTS: a profile of
    thousands of accounts outgrows one item), then the run's own choices and the number of parts,
    written last so a preview read back is whole or not found."""
    key, stamp, ttl = (
        PeriodPreview.key(tenant_id, fingerprint),
        now_iso(),
        int(now().timestamp()) + PREVIEW_DAYS * 86400,
    )
    ordered = sorted(accounts.items())
    chunks = [ordered[n : n + PREVIEW_PART_ACCOUNTS] for n in range(0, len(ordered), PREVIEW_PART_ACCOUNTS)]
    with PeriodPreview.batch_write() as batch:
        for number, chunk in enumerate(chunks):
            batch.save(
                PeriodPreview(
                    key,
                    PeriodPreview.part_sort_key(number),
                    tenant_id=tenant_id,
                    id=fingerprint,
                    accounts=dict(chunk),
                    created_at=stamp,
                    ttl=ttl,
                )
            )
    PeriodPreview(
        key,
        META,
        tenant_id=tenant_id,
        id=fingerprint,
        accounts={},
        parameters=parameters,
        parts=len(chunks),
        created_at=stamp,
        ttl=ttl,
    ).save()


@dataclass(frozen=True)
class ShownPreview:
    accounts: dict[str, str]
    parameters: dict[str, str] | None


def _plain_map(value: object) -> dict[str, str]:
    data = value.as_dict() if hasattr(value, "as_dict") else dict(value)  # type: ignore[call-overload]
    return {str(k): str(v) for k, v in data.items()}


def preview_shown(tenant_id: str, fingerprint: str) -> ShownPreview | None:
    """The preview as it was saved, or None (expired, or not all of it written)."""
    meta: PeriodPreview | None = None
    accounts: dict[str, str] = {}
    found = 0
    for record in PeriodPreview.query(PeriodPreview.key(tenant_id, fingerprint)):
        if record.sk == META:
            meta = record
        else:
            found += 1
        accounts.update(_plain_map(record.accounts))  # a preview of an older version: all in META
    if meta is None or (meta.parts is not None and int(meta.parts) != found):
        return None
    parameters = None if meta.parameters is None else _plain_map(meta.parameters)
    return ShownPreview(accounts, parameters)


# ---------------------------------------------------------------------------- the bill-once write
def _charge_record(item: dm.BillableItem, invoice: dm.Invoice, actor: str, stamp: str) -> BillableItem:
    """A new recurring charge, born pending and invoiced in the same put (the machine decides both)."""
    born = ITEM_MACHINE.begin(item.id, dm.ItemStatus.PENDING, at=now(), actor=actor)
    moved = ITEM_MACHINE.transition(
        item.id, dm.ItemStatus.PENDING, dm.ItemStatus.INVOICED, at=now(), actor=actor
    )
    invoiced = dataclasses.replace(item, status=dm.ItemStatus(moved.to_status), invoice_id=invoice.id)
    record = billing.item_record(invoiced, invoice.run_id)
    record.invoice_id = invoice.id
    record.destination = str(invoice.destination)
    record.created_at = record.updated_at = stamp
    record.history = [
        common.history_entry(actor, None, born.to_status, "recurring charge"),
        common.history_entry(actor, born.to_status, moved.to_status, f"invoice {invoice.id}"),
    ]
    return record


def write_period_invoice(
    invoice: dm.Invoice,
    new_charges: Sequence[dm.BillableItem],
    moved: Sequence[BillableItem],
    *,
    profile_id: str,
    period_key: str,
    balance_forward: Decimal,
    actor: str,
    numbering: numbers.Mode = numbers.Mode.NONE,
    hint: numbers.Hint | None = None,
) -> str:
    """Put the period's invoice, its new charges and move its pending items, atomically; with
    `numbering` automatic it takes the tenant's next invoice number in the same transaction.

    "created"; "exists" when this (profile, period, account) has its invoice already (nothing
    written); Conflict when an item was taken by another invoice meanwhile (nothing written)."""
    if 1 + len(new_charges) + len(moved) + billing.NUMBERING_PARTS > billing.TRANSACTION_MAX:
        raise Conflict("an invoice's items must fit one transaction")
    stamp = now_iso()
    reason = f"bill profile {profile_id}, period {period_key}"
    record, moves = billing.new_invoice(invoice, moved, actor, reason)
    record.bill_profile_id = profile_id
    record.period_key = period_key
    record.balance_forward = balance_forward

    def write(tx: TransactWrite, number: str | None) -> None:
        record.number = number
        tx.save(record, condition=Entity.pk.does_not_exist())
        for charge in new_charges:
            tx.save(_charge_record(charge, invoice, actor, stamp), condition=Entity.pk.does_not_exist())
        for item, move in zip(moved, moves, strict=True):
            tx.update(item, actions=move.actions, condition=move.condition)

    try:
        numbers.write_numbered(
            invoice.tenant_id, billing.INVOICE_SEQUENCE, invoice.id, write, mode=numbering, hint=hint
        )
    except (TransactWriteError, PutError) as exc:
        if _first_refused(exc) or common.find(Invoice, record.pk) is not None:
            return "exists"
        if common.transaction_conflict(exc):
            raise Conflict("another run is writing this account's items; run again") from exc
        raise Conflict("billable items were invoiced by another request meanwhile") from exc
    return "created"


def _first_refused(exc: Exception) -> bool:
    """True when DynamoDB says the invoice's own put (the first action) was refused: it exists."""
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return bool(reasons) and reasons[0] is not None and reasons[0].code == "ConditionalCheckFailed"


def period_invoices(tenant_id: str, profile_id: str, period_key: str) -> list[Invoice]:
    """The invoices of a profile's period (their run index), for progress and tests."""
    run_id = recurring.period_run_id(profile_id, period_key)
    return [r for r in Entity.gsi2.query(Invoice.run_key(tenant_id, run_id)) if isinstance(r, Invoice)]


# ---------------------------------------------------------------------------- regenerate a draft
def rewrite_draft(
    record: Invoice,
    invoice: dm.Invoice,
    balance_forward: Decimal,
    charges: Sequence[dm.BillableItem],
    actor: str,
) -> bool:
    """Rebuild a period draft from a new plan in ONE transaction, conditional on the draft being
    unchanged since read: its lines and totals; items it no longer bills back to pending; items it
    newly bills moved from pending; its recurring charges rewritten (new ones put once). False when
    nothing changed. Bill once holds: every item move is conditional on the item's status."""
    from fieldbill.store import invoices as lifecycle  # the lifecycle's conditions and releases

    tenant_id = record.tenant_id
    old_ids = [str(i) for i in record.item_ids or []]
    new_ids = list(invoice.item_ids)
    charge_ids = {c.id for c in charges}
    released = [i for i in old_ids if i not in new_ids]
    taken = [i for i in new_ids if i not in old_ids and i not in charge_ids]
    existing = billing.items_by_id(tenant_id, charge_ids) if charge_ids else {}
    same_lines = lifecycle.lines_to_domain(record) == invoice.lines
    if same_lines and Decimal(record.balance_forward or 0) == balance_forward:
        return False
    version = int(record.version) + 1
    reason = f"regenerated from current data (version {version})"
    actions: list[Action] = [
        Invoice.lines.set(billing.line_records(invoice.lines)),
        Invoice.item_ids.set(new_ids),  # type: ignore[arg-type]
        Invoice.subtotal.set(invoice.subtotal),
        Invoice.total.set(invoice.total),
        Invoice.balance.set(invoice.total),
        # the tax the new lines carry (it was left as it was, the total without it)
        Invoice.tax_total.set(invoice.tax_total),
        Invoice.tax_code_id.set(invoice.tax_code_id) if invoice.tax_code_id else Invoice.tax_code_id.remove(),
        Invoice.tax_rate.set(invoice.tax_rate) if invoice.tax_rate is not None else Invoice.tax_rate.remove(),
        Invoice.balance_forward.set(balance_forward),
        Invoice.version.set(version),
        Invoice.updated_at.set(now_iso()),
        Invoice.history.set(
            Invoice.history.append([common.history_entry(actor, record.status, record.status, reason)])
        ),
    ]
    condition = (
        (Invoice.version == int(record.version))
        & (Invoice.status == str(dm.InvoiceStatus.DRAFT))
        & (Invoice.sync_status == str(record.sync_status))
    )
    parts = lifecycle.release_parts(tenant_id, record.id, released, actor, f"invoice {record.id} regenerated")
    stamp = now_iso()
    try:
        with TransactWrite(connection=common.connection()) as tx:
            tx.update(record, actions=actions, condition=condition)
            for item, item_actions, item_condition in parts:
                tx.update(item, actions=item_actions, condition=item_condition)
            for item_id in taken:
                stub = item_stub(tenant_id, item_id)
                move = _take(stub, invoice, actor)
                tx.update(stub, actions=move.actions, condition=move.condition)
            for charge in charges:
                held = existing.get(charge.id)
                if held is None:
                    tx.save(
                        _charge_record(charge, invoice, actor, stamp), condition=Entity.pk.does_not_exist()
                    )
                elif held.invoice_id == record.id and held.status == str(dm.ItemStatus.INVOICED):
                    tx.update(
                        held,
                        actions=[
                            BillableItem.description.set(charge.description),
                            BillableItem.quantity.set(charge.quantity),
                            BillableItem.unit_price.set(charge.unit_price),
                            BillableItem.amount.set(charge.amount),
                            BillableItem.updated_at.set(stamp),
                        ],
                        condition=BillableItem.invoice_id == record.id,
                    )
                else:
                    move = _take(held, invoice, actor)
                    tx.update(held, actions=move.actions, condition=move.condition)
    except (TransactWriteError, PutError) as exc:
        raise Conflict(f"invoice {record.id!r} or its items changed meanwhile; regenerate again") from exc
    return True


def _take(item: BillableItem, invoice: dm.Invoice, actor: str) -> transitions.Change:
    return transitions.change(
        BillableItem,
        "status",
        ITEM_MACHINE,
        item.id,
        str(dm.ItemStatus.PENDING),
        str(dm.ItemStatus.INVOICED),
        actor=actor,
        reason=f"invoice {invoice.id}",
        extra=[
            BillableItem.invoice_id.set(invoice.id),
            BillableItem.destination.set(str(invoice.destination)),
            BillableItem.gsi1pk.set(BillableItem.status_key(item.tenant_id, str(dm.ItemStatus.INVOICED))),
        ],
    )


def items_of(tenant_id: str, item_ids: Iterable[str]) -> list[dm.BillableItem]:
    return [billing.item_to_domain(r) for r in billing.items_by_id(tenant_id, item_ids).values()]
