"""Invoice groups (issue 16 item 6): a named collection, its members in its own partition.

A member is one item `(T#t#IGROUP#<group>, INV#<invoice>)`: adding an invoice twice writes the
same item (idempotent), the invoice itself is not touched, and a group's invoices are one query
plus a batch get per 100 invoices.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from fieldbill.clock import now_iso
from fieldbill.domain.errors import NotFound, ValidationError
from fieldbill.store import billing, common
from fieldbill.store.models import META, Entity, Invoice, InvoiceGroup, InvoiceGroupMember

MAX_MEMBERS = 5000


def create(tenant_id: str, group_id: str, name: str, actor: str) -> InvoiceGroup:
    record = InvoiceGroup(
        InvoiceGroup.key(tenant_id, group_id),
        META,
        tenant_id=tenant_id,
        id=group_id,
        gsi1pk=InvoiceGroup.list_key(tenant_id),
        gsi1sk=f"{name.lower()}#{group_id}",
        name=name,
    )
    common.create(record, actor, reason="invoice group created")
    return record


def get(tenant_id: str, group_id: str) -> InvoiceGroup:
    return common.get(InvoiceGroup, InvoiceGroup.key(tenant_id, group_id), entity="invoice group")


def find(tenant_id: str, group_id: str) -> InvoiceGroup | None:
    return common.find(InvoiceGroup, InvoiceGroup.key(tenant_id, group_id))


def rename(tenant_id: str, group_id: str, name: str, actor: str) -> InvoiceGroup:
    record = get(tenant_id, group_id)
    record.update(
        actions=[
            InvoiceGroup.name.set(name),
            InvoiceGroup.gsi1sk.set(f"{name.lower()}#{group_id}"),
            InvoiceGroup.updated_at.set(now_iso()),
            InvoiceGroup.history.set(
                InvoiceGroup.history.append(
                    [common.history_entry(actor, None, "renamed", f"renamed to {name}")]
                )
            ),
        ],
        condition=Entity.pk.exists(),
    )
    return record


def list_groups(tenant_id: str, limit: int, cursor: str | None) -> tuple[list[InvoiceGroup], str | None]:
    key = InvoiceGroup.list_key(tenant_id)
    return common.list_by_gsi1(InvoiceGroup, key, limit, common.checked_cursor(cursor, gsi1pk=key))


def cursor_after(record: InvoiceGroup) -> str | None:
    """The list's cursor right after this group (a page cut short:)."""
    return common.cursor_after_gsi1(record)


def member_ids(tenant_id: str, group_id: str) -> list[str]:
    query = Entity.query(
        InvoiceGroup.key(tenant_id, group_id), Entity.sk.startswith(InvoiceGroup.member_sort_key(""))
    )
    return [r.invoice_id for r in query if isinstance(r, InvoiceGroupMember)]


def add(tenant_id: str, group_id: str, invoice_ids: Sequence[str], actor: str) -> list[str]:
    """Add invoices (they must exist); the ids not found are refused (NotFound), nothing added."""
    get(tenant_id, group_id)
    found = billing.invoices_by_id(tenant_id, invoice_ids)
    missing = [i for i in invoice_ids if i not in found]
    if missing:
        raise NotFound("invoice", missing[0])
    if len(set(member_ids(tenant_id, group_id)) | set(invoice_ids)) > MAX_MEMBERS:
        raise ValidationError("invoice_ids", f"a group holds at most {MAX_MEMBERS} invoices")
    stamp = now_iso()
    key = InvoiceGroup.key(tenant_id, group_id)
    with InvoiceGroupMember.batch_write() as batch:
        for invoice_id in dict.fromkeys(invoice_ids):
            batch.save(
                InvoiceGroupMember(
                    key,
                    InvoiceGroup.member_sort_key(invoice_id),
                    tenant_id=tenant_id,
                    id=f"{group_id}:{invoice_id}",
                    group_id=group_id,
                    invoice_id=invoice_id,
                    created_at=stamp,
                    updated_at=stamp,
                    history=[common.history_entry(actor, None, "member", "added to the group")],
                )
            )
    return list(dict.fromkeys(invoice_ids))


def remove(tenant_id: str, group_id: str, invoice_ids: Iterable[str]) -> None:
    """Take invoices out of the group (the invoices stay as they are)."""
    get(tenant_id, group_id)
    key = InvoiceGroup.key(tenant_id, group_id)
    with InvoiceGroupMember.batch_write() as batch:
        for invoice_id in set(invoice_ids):
            batch.delete(InvoiceGroupMember(key, InvoiceGroup.member_sort_key(invoice_id)))


def invoices(tenant_id: str, group_id: str) -> list[Invoice]:
    ids = member_ids(tenant_id, group_id)
    found = billing.invoices_by_id(tenant_id, ids)
    return [found[i] for i in ids if i in found]
