"""A tenant's sales-tax codes (issue 15): create, read, list, change, delete, and the rules new
invoices are taxed by (domain/tax.py).

At most one code is the default: making one the default clears the others' flag in the same
transaction, conditional on each still being the default (a racing change loses with a 409).
An invoice copies its code's rate when it is made, so changing or deleting a code never moves the
tax of an invoice already made.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from fieldbill.clock import now_iso
from fieldbill.domain import tax
from fieldbill.domain.errors import Conflict, ValidationError
from fieldbill.store import catalog, common
from fieldbill.store.models import META, Contact, Entity, Product, TaxCode

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
        contacts=ContactChoices(tenant_id),
        products=ProductChoices(tenant_id),
    )


# -------------------------------------------------------------------- per contact and product (issue 15)
def contact_choice(record: Contact) -> tax.TaxChoice | None:
    if record.tax_exempt:
        return tax.TaxChoice(taxable=False)
    return tax.TaxChoice(code_id=record.tax_code_id) if record.tax_code_id else None


def product_choice(record: Product) -> tax.TaxChoice | None:
    if record.non_taxable:
        return tax.TaxChoice(taxable=False)
    if record.catalog_role:  # a service type's or inventory item's own flag is its answer (issue 17)
        return tax.TaxChoice(taxable=bool(record.taxable))
    return None


class _Choices(Mapping[str, tax.TaxChoice]):
    """The tax choices of a tenant's contacts or products, read when first asked for (a generate
    page asks for its few contacts and products; `prefetch` reads many in one batch) and kept for
    the page: domain/tax.py sees a plain mapping."""

    model: type[Contact] | type[Product]

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self._known: dict[str, tax.TaxChoice | None] = {}

    def _choice(self, record: Any) -> tax.TaxChoice | None:
        raise NotImplementedError

    def prefetch(self, ids: Iterable[str]) -> None:
        wanted = [i for i in dict.fromkeys(ids) if i and i not in self._known]
        if not wanted:
            return
        found = common.batch_get(self.model, ((self.model.key(self.tenant_id, i), META) for i in wanted))
        by_id = {r.id: r for r in found.values()}
        for item_id in wanted:
            record = by_id.get(item_id)
            self._known[item_id] = self._choice(record) if record is not None else None

    def remember(self, records: Iterable[Any]) -> None:
        """Choices of records the caller has read already (no request)."""
        for record in records:
            self._known.setdefault(record.id, self._choice(record))

    def __getitem__(self, key: str) -> tax.TaxChoice:
        if key not in self._known:
            self.prefetch([key])
        found = self._known.get(key)
        if found is None:
            raise KeyError(key)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter([k for k, v in self._known.items() if v is not None])

    def __len__(self) -> int:
        return sum(1 for v in self._known.values() if v is not None)


class ContactChoices(_Choices):
    model = Contact

    def _choice(self, record: Any) -> tax.TaxChoice | None:
        return contact_choice(record)


class ProductChoices(_Choices):
    model = Product

    def _choice(self, record: Any) -> tax.TaxChoice | None:
        return product_choice(record)


def check_code(tenant_id: str, code_id: str | None, field: str = "tax_code_id") -> None:
    """A code named on a contact or a line must be one of the tenant's active codes (422)."""
    if code_id is None:
        return
    found = record(tenant_id, code_id)
    if found is None or not found.active:
        raise ValidationError(field, f"no active tax code {code_id!r} in this tenant")


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


def prefetch(rules_: tax.TaxRules, contact_ids: Iterable[str], product_ids: Iterable[str]) -> None:
    """Read a page's contacts' and products' tax choices in batches, not one by one."""
    if isinstance(rules_.contacts, _Choices):
        rules_.contacts.prefetch(contact_ids)
    if isinstance(rules_.products, _Choices):
        rules_.products.prefetch(product_ids)


def remember(rules_: tax.TaxRules, contacts: Iterable[Contact], products: Iterable[Product]) -> None:
    """The tax choices of contacts and products already read (a draft run reads every account of
    its profile and every product anyway): none read again, one by one."""
    if isinstance(rules_.contacts, _Choices):
        rules_.contacts.remember(contacts)
    if isinstance(rules_.products, _Choices):
        rules_.products.remember(products)


def contact_exempt(tenant_id: str, contact_id: str) -> bool:
    """Whether a contact is tax-exempt now (issue 15: an exemption reason needs it; 404 if none)."""
    return bool(catalog.contacts.get(tenant_id, contact_id).tax_exempt)
