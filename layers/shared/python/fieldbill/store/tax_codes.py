"""A tenant's sales-tax codes (issue 15): create, read, list, change, delete, and the rules new
invoices are taxed by (domain/tax.py).

At most one code is the default: making one the default clears the others' flag in the same
transaction, conditional on each still being the default (a racing change loses with a 409).
An invoice copies its code's rate when it is made, so changing or deleting a code never moves the
tax of an invoice already made.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from fieldbill.clock import now_iso
from fieldbill.domain import tax
from fieldbill.domain.errors import Conflict
from fieldbill.store import catalog, common
from fieldbill.store.models import META, Entity, TaxCode

ENTITY = "tax-code"


def get(tenant_id: str, code_id: str) -> TaxCode:
    return common.get(TaxCode, TaxCode.key(tenant_id, code_id), entity=ENTITY)


def all_codes(tenant_id: str) -> list[TaxCode]:
    """Every code of the tenant (a handful: one query)."""
    return [r for r in Entity.gsi1.query(TaxCode.list_key(tenant_id)) if isinstance(r, TaxCode)]


def list_codes(tenant_id: str, limit: int, cursor: str | None) -> tuple[list[TaxCode], str | None]:
    return common.list_by_gsi1(TaxCode, TaxCode.list_key(tenant_id), limit, cursor)


def rules(tenant_id: str, taxable_kinds: tuple[str, ...] = tax.DEFAULT_TAXABLE_KINDS) -> tax.TaxRules:
    codes = all_codes(tenant_id)
    default = next((c.id for c in sorted(codes, key=lambda c: c.id) if c.is_default and c.active), None)
    return tax.TaxRules(
        codes={c.id: tax.TaxCode(c.id, c.name, Decimal(c.rate), bool(c.active)) for c in codes},
        default_code=default,
        taxable_kinds=taxable_kinds,
    )


def _clear_other_defaults(tx: TransactWrite, tenant_id: str, keep: str) -> None:
    for other in all_codes(tenant_id):
        if other.id != keep and other.is_default:
            tx.update(
                other,
                actions=[TaxCode.is_default.set(False), TaxCode.updated_at.set(now_iso())],
                condition=TaxCode.is_default == True,  # noqa: E712 - a DynamoDB condition, not a test
            )


def create(tenant_id: str, actor: str, data: Mapping[str, Any]) -> TaxCode:
    values = dict(data)
    code_id = catalog.new_id(values.pop("id", None))
    values["rate"] = tax.check_rate(Decimal(values["rate"]))
    record = catalog.new_named(TaxCode, tenant_id, code_id, values)
    stamp = now_iso()
    record.created_at = record.updated_at = stamp
    record.history = [common.history_entry(actor, None, "created", "created")]
    try:
        with TransactWrite(connection=common.connection()) as tx:
            tx.save(record, condition=Entity.pk.does_not_exist())
            if record.is_default:
                _clear_other_defaults(tx, tenant_id, code_id)
    except TransactWriteError as exc:
        if common.find(TaxCode, record.pk) is not None:
            raise Conflict(f"tax-code {code_id!r} already exists") from None
        raise Conflict("another request changed the tax codes at the same time; retry") from exc
    return record


def update(tenant_id: str, code_id: str, changes: Mapping[str, Any], actor: str) -> TaxCode:
    record = get(tenant_id, code_id)
    values = dict(changes)
    if "rate" in values:
        values["rate"] = tax.check_rate(Decimal(values["rate"]))
    if values.get("is_default") and not record.is_default:
        # The new default and the old one's flag change together.
        values = catalog.named_changes(record, values)
        actions = [getattr(TaxCode, k).set(v) for k, v in values.items() if v is not None]
        actions += [getattr(TaxCode, k).remove() for k, v in values.items() if v is None]
        entry = common.history_entry(actor, None, "updated", "changed " + ", ".join(sorted(changes)))
        actions += [TaxCode.updated_at.set(now_iso()), TaxCode.history.set(TaxCode.history.append([entry]))]
        try:
            with TransactWrite(connection=common.connection()) as tx:
                tx.update(record, actions=actions, condition=Entity.pk.exists())
                _clear_other_defaults(tx, tenant_id, code_id)
        except TransactWriteError:
            raise Conflict("another request changed the tax codes at the same time; retry") from None
        return get(tenant_id, code_id)
    return catalog.update(record, catalog.named_changes(record, values), actor)


def delete(tenant_id: str, code_id: str, actor: str) -> None:
    """Invoices keep the rate they copied: deleting a code changes no invoice."""
    catalog.delete(get(tenant_id, code_id), actor)


def record(tenant_id: str, code_id: str) -> TaxCode | None:
    return common.find(TaxCode, TaxCode.key(tenant_id, code_id), META)
