"""Customers and items: what an invoice refers to in QuickBooks, and our edits of them.

A contact or product is linked to the QuickBooks record of its name when one exists (an inactive
one is reactivated), else created with a deterministic requestid; a 6240 (name taken, e.g. with
other spacing) resolves to the record that holds the name. Never a second customer or item.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from fieldbill.quickbooks import mapping
from fieldbill.quickbooks.client import (
    BATCH_MAX_OPERATIONS,
    batch_item_id,
    batch_request_id,
    quote,
    request_id,
)
from fieldbill.quickbooks.errors import (
    AuthorizationFailed,
    DuplicateName,
    NeedsReconnect,
    Permanent,
    QboError,
    StaleObject,
    Throttled,
)
from fieldbill.store import qbo_links
from fieldbill.workflows.qbo_sync.tenants import Tenant

if TYPE_CHECKING:  # records come from store/ functions; the classes only type them
    from fieldbill.store.models import Contact, Product

STALE_RETRIES = 3
QUERY_IN_MAX = 30  # values in one IN (...) of a QuickBooks query
_DUPLICATE_ID_RE = re.compile(r"\bId=(\d+)")

Failed = dict[str, QboError | mapping.MappingError]


# ---------------------------------------------------------------------------------- customers
def ensure_customer(
    tenant: Tenant, contact_id: str, *, record: Contact | None = None, known_absent: bool = False
) -> str:
    """The QuickBooks customer of a contact: linked, found by name, or created (known_absent: a
    name query just found nothing, so go straight to the create)."""
    if contact_id in tenant.customers:
        return tenant.customers[contact_id]
    record = record or qbo_links.contact(tenant.tenant_id, contact_id)
    if record is None:
        raise Permanent(
            "fieldbill.contact_missing",
            "the invoice's contact does not exist",
            f"contact {contact_id}",
            "CustomerRef",
        )
    if not record.qbo_id:
        body = customer_body(record)
        found = None
        if not known_absent:
            found = find_by_name(tenant, "Customer", "DisplayName", body["DisplayName"])
        if found is None:
            try:
                found = tenant.client.create(
                    "Customer", body, request_id("customer", tenant.tenant_id, contact_id)
                )
            except DuplicateName as exc:
                found = resolve_duplicate(tenant, "Customer", "DisplayName", body["DisplayName"], exc)
        link_contact(tenant, record, found)
    tenant.customers[contact_id] = str(record.qbo_id)
    return str(record.qbo_id)


def ensure_customers(tenant: Tenant, contact_ids: Iterable[str]) -> Failed:
    """Link many contacts at once: one read for the contacts, one name query per 30 missing ones
    (existing customers are linked, never created twice); the rest are created ≤ 30 per batch
    call when a batch slot is free at once, else one by one. (A batch slot could carry 30
    invoices, but 200 single creates spend 200 calls, each a chance of a 429 that stops the
    realm: measured, batch creates win with faults and tie without; docs/sync.md §4.)
    Returns the contacts whose customer could not be had, with why."""
    wanted = [c for c in dict.fromkeys(contact_ids) if c not in tenant.customers]
    missing: dict[str, Contact] = {}
    for record in qbo_links.contacts(tenant.tenant_id, wanted).values():
        if record.qbo_id:
            tenant.customers[record.id] = str(record.qbo_id)
        else:
            missing[mapping.contact_to_qbo(record.name)["DisplayName"].casefold()] = record
    names = list(missing)
    for start in range(0, len(names), QUERY_IN_MAX):
        chunk = [missing[n] for n in names[start : start + QUERY_IN_MAX]]
        values = ", ".join(quote(mapping.contact_to_qbo(c.name)["DisplayName"]) for c in chunk)
        for row in tenant.client.query("Customer", f"DisplayName IN ({values})", max_results=1000):
            named = missing.pop(str(row.get("DisplayName", "")).casefold(), None)
            if named is not None:
                link_contact(tenant, named, row)
    failed: Failed = {}
    if len(missing) >= 2:
        _create_customers(tenant, list(missing.values()), failed)
    for record in missing.values():
        if record.id in tenant.customers or record.id in failed:
            continue
        try:
            ensure_customer(tenant, record.id, record=record, known_absent=True)
        except (QboError, mapping.MappingError) as exc:
            failed[record.id] = exc
            if isinstance(exc, Throttled | NeedsReconnect | AuthorizationFailed):
                break  # the realm is cooling down or gone: the others would fail the same way
    for record in missing.values():
        if record.id not in tenant.customers and record.id not in failed and failed:
            failed[record.id] = next(iter(failed.values()))
    return failed


def _create_customers(tenant: Tenant, records: list[Contact], failed: Failed) -> None:
    """Customers a name query just did not find, created ≤ 30 per QuickBooks batch call: one
    request (of the realm's 500 a minute) for 30 customers instead of 30. Each create carries the
    requestid the single-call path would use, and a create that went through unseen is found by
    the next attempt's name query (or answers 6240): never a second customer. A 6240 here (the
    name exists with other spacing) resolves as on the single path. With no batch slot free at
    once, the single-call path creates them instead."""
    for start in range(0, len(records), BATCH_MAX_OPERATIONS):
        chunk = records[start : start + BATCH_MAX_OPERATIONS]
        bodies, ids = {}, {}
        for record in chunk:
            try:
                bodies[record.id] = customer_body(record)
            except mapping.MappingError as exc:
                failed[record.id] = exc
                continue
            ids[record.id] = request_id("customer", tenant.tenant_id, record.id)
        if len(ids) < 2:
            return  # one left: the single-call path
        operations = [
            {"bId": batch_item_id(rid), "operation": "create", "Customer": bodies[cid]}
            for cid, rid in ids.items()
        ]
        try:
            # Batch slots are what invoices need most: no free one now, and the single calls
            # (counted only against requests per minute) go instead.
            results = tenant.client.batch(operations, batch_request_id(list(ids.values())), max_wait=0.0)
        except QboError as exc:
            if isinstance(exc, Throttled) and exc.local:
                return  # no batch slot at once: the single-call path creates them
            # The whole call failed: these contacts (and the rest) wait for the records' retry.
            for record in records[start:]:
                failed.setdefault(record.id, exc)
            return
        for record in chunk:
            if record.id not in ids:
                continue
            result = results.get(batch_item_id(ids[record.id]))
            try:
                if isinstance(result, DuplicateName):
                    name = bodies[record.id]["DisplayName"]
                    result = resolve_duplicate(tenant, "Customer", "DisplayName", name, result)
                if isinstance(result, dict):
                    link_contact(tenant, record, result)
                elif isinstance(result, QboError):
                    failed[record.id] = result
                # no answer for it: the single-call path tries it on its own
            except QboError as exc:
                failed[record.id] = exc


def link_contact(tenant: Tenant, record: Contact, row: dict[str, Any]) -> None:
    qbo_links.link_contact(record, row)
    tenant.customers[record.id] = str(row["Id"])


# ---------------------------------------------------------------------------------- items
def ensure_items(tenant: Tenant, product_ids: Iterable[str]) -> dict[str, str]:
    for product_id in dict.fromkeys(product_ids):
        if product_id not in tenant.items:
            tenant.items[product_id] = ensure_item(tenant, product_id)
    return tenant.items


def ensure_item(tenant: Tenant, product_id: str) -> str:
    record = qbo_links.product(tenant.tenant_id, product_id)
    if record is None:
        raise Permanent(
            "fieldbill.product_missing",
            "an invoice line's product does not exist",
            f"product {product_id}",
            "Line.SalesItemLineDetail.ItemRef",
        )
    if record.qbo_id:
        return str(record.qbo_id)
    name = mapping.clean_name(record.name, mapping.ITEM_NAME_MAX)
    found = find_by_name(tenant, "Item", "Name", name)
    if found is None:
        # Settings are complete (Tenants.get checks): an item's own account overrides the default.
        body = mapping.product_to_qbo(
            record.name,
            record.kind,
            record.default_unit_price,
            record.income_account_ref or tenant.settings.default_income_account,
            record.expense_account_ref or tenant.settings.default_expense_account,
        )
        try:
            found = tenant.client.create("Item", body, request_id("item", tenant.tenant_id, product_id))
        except DuplicateName as exc:
            found = resolve_duplicate(tenant, "Item", "Name", name, exc)
    qbo_links.link_product(record, found)
    return str(found["Id"])


# ---------------------------------------------------------------------------------- names
def find_by_name(
    tenant: Tenant, entity: str, field_name: str, name: str, include_inactive: bool = False
) -> dict[str, Any] | None:
    rows = tenant.client.query(entity, f"{field_name} = {quote(name)}", max_results=10)
    if not rows and include_inactive:
        where = f"{field_name} = {quote(name)} AND Active = false"
        inactive = tenant.client.query(entity, where, max_results=10)
        if inactive:
            return reactivate(tenant, entity, inactive[0])
    return rows[0] if rows else None


def resolve_duplicate(
    tenant: Tenant, entity: str, field_name: str, name: str, error: DuplicateName
) -> dict[str, Any]:
    """6240: the name is taken. Use that record if it is a(n inactive) customer/item: found by
    name, else by the Id QuickBooks names in the fault detail (names that differ only in spacing)."""
    found = find_by_name(tenant, entity, field_name, name, include_inactive=True)
    if found is not None:
        return found
    match = _DUPLICATE_ID_RE.search(error.detail or "")
    if match:
        try:
            row = tenant.client.read(entity, match.group(1))
        except Permanent:
            row = None  # not of this entity: a vendor or an employee holds the name
        if row is not None:
            return reactivate(tenant, entity, row) if row.get("Active") is False else row
    raise error  # a person must rename one of them


def reactivate(tenant: Tenant, entity: str, row: dict[str, Any]) -> dict[str, Any]:
    """An inactive customer or item cannot be invoiced: make it active again."""
    rid = request_id("reactivate", entity, row["Id"], row["SyncToken"])
    return tenant.client.update(entity, {"Id": row["Id"], "SyncToken": row["SyncToken"], "Active": True}, rid)


# ---------------------------------------------------------------------------------- our edits
def sync_contact(tenant: Tenant, contact_id: str) -> None:
    """Our edit of a contact: its customer created, or a sparse update of name and email."""
    record = qbo_links.contact(tenant.tenant_id, contact_id)
    if record is None:
        return
    stamp = record.qbo_dirty_since  # the change this push carries (issue 15: cleared once taken)
    if not record.qbo_id:
        ensure_customer(tenant, record.id)
        # The customer may have been found, or created by another push that read an older
        # version of the contact: what QuickBooks holds is not known, so ours is sent over it.
        record = qbo_links.contact(tenant.tenant_id, contact_id)
        if record is None or not record.qbo_id:
            return
    result = sparse_update(
        tenant,
        "Customer",
        str(record.qbo_id),
        record.qbo_sync_token,
        customer_body(record),
        ("customer-update", tenant.tenant_id, record.id, record.updated_at),
    )
    qbo_links.keep_contact_token(record, str(result.get("SyncToken", "0")))
    qbo_links.clear_dirty(record, stamp)


def sync_product(tenant: Tenant, product_id: str) -> None:
    """Our edit of a product: its item created, or a sparse update of name and price."""
    record: Product | None = qbo_links.product(tenant.tenant_id, product_id)
    if record is None:
        return
    stamp = record.qbo_dirty_since
    if not record.qbo_id:
        ensure_item(tenant, record.id)
        qbo_links.clear_dirty(record, stamp)
        return
    body: dict[str, Any] = {"Name": mapping.clean_name(record.name, mapping.ITEM_NAME_MAX)}
    if record.default_unit_price is not None:
        body["UnitPrice"] = record.default_unit_price
    result = sparse_update(
        tenant,
        "Item",
        str(record.qbo_id),
        record.qbo_sync_token,
        body,
        ("item-update", tenant.tenant_id, record.id, record.updated_at),
    )
    qbo_links.keep_product_token(record, str(result.get("SyncToken", "0")))
    qbo_links.clear_dirty(record, stamp)


def sparse_update(
    tenant: Tenant,
    entity: str,
    qbo_id: str,
    sync_token: str | None,
    body: dict[str, Any],
    id_parts: tuple[Any, ...],
) -> dict[str, Any]:
    """A sparse update, sent again with the current SyncToken while QuickBooks says stale (5010)."""
    token = sync_token or str(tenant.client.read(entity, qbo_id)["SyncToken"])
    for attempt in range(STALE_RETRIES + 1):
        try:
            return tenant.client.update(
                entity, {**body, "Id": qbo_id, "SyncToken": token}, request_id(*id_parts, token)
            )
        except StaleObject:
            if attempt == STALE_RETRIES:
                raise
            token = str(tenant.client.read(entity, qbo_id)["SyncToken"])
    raise AssertionError("unreachable")


def customer_body(record: Contact) -> dict[str, Any]:
    """QuickBooks' Customer for a contact: one place for what we send, created or updated."""
    return mapping.contact_to_qbo(
        record.name,
        record.email,
        taxable=_taxable(record),
        exemption_reason=_reason(record),
        phone=record.phone,
        address=record.address,
    )


def _reason(record: Contact) -> int | None:
    """issue 15: a tax-exempt contact's exemption reason for QuickBooks (TaxExemptionReasonId)."""
    return int(record.tax_exemption_reason) if record.tax_exemption_reason is not None else None


def _taxable(record: Contact) -> bool | None:
    """issue 15: QuickBooks' Taxable flag of a contact given a tax setting here (None: not sent)."""
    return None if record.tax_exempt is None else not record.tax_exempt
