"""Account balances: what each contact's open invoices still owe, kept up to date by the invoice
writes themselves (docs/data-model.md, pattern 21; decision 0009).

An invoice owes its balance while it is open or partly paid (a draft owes nothing yet; paid, void
and deleted owe nothing). Every invoice write that changes what it owes adds the difference to
its contact's AccountBalance item IN THE SAME TRANSACTION (`owed_delta` + `balance_part`), so the
maintained number cannot drift from the invoices. All of a tenant's balances live in one
partition: the invoice list reads them all in one request, whatever the number of invoices.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from fieldbill.clock import now_iso
from fieldbill.domain.errors import Conflict
from fieldbill.domain.model import InvoiceStatus
from fieldbill.store import common
from fieldbill.store.models import AccountBalance, Entity, Invoice

ZERO = Decimal("0")
OWING = (InvoiceStatus.OPEN, InvoiceStatus.PARTIALLY_PAID)


def owed(status: str, balance: Decimal | None) -> Decimal:
    """What an invoice in `status` with `balance` adds to its contact's account balance."""
    return Decimal(balance or 0) if status in OWING else ZERO


def owed_delta(record: Invoice, status_after: str, balance_after: Decimal | None) -> Decimal:
    before = owed(str(record.status), record.balance if record.balance is not None else record.total)
    return owed(status_after, balance_after) - before


def balance_part(tenant_id: str, contact_id: str, delta: Decimal) -> tuple[AccountBalance, list[Any]]:
    """The transaction part that adds `delta` to a contact's balance (creating it at first use)."""
    record = AccountBalance(AccountBalance.key(tenant_id), contact_id)
    actions = [
        AccountBalance.balance.add(delta),
        AccountBalance.type.set(AccountBalance),  # type: ignore[arg-type]
        AccountBalance.tenant_id.set(tenant_id),
        AccountBalance.id.set(contact_id),
        AccountBalance.updated_at.set(now_iso()),
    ]
    return record, actions


def write_invoice_with_balance(
    record: Invoice, actions: list[Any], condition: Any, delta: Decimal, releases: Iterable[Any] = ()
) -> None:
    """One invoice update, plus its contact's balance change and items released, atomically."""
    parts = list(releases)
    try:
        if delta == 0 and not parts:
            record.update(actions=actions, condition=condition)
            return
        with TransactWrite(connection=common.connection()) as tx:
            tx.update(record, actions=actions, condition=condition)
            for item, item_actions, item_condition in parts:
                tx.update(item, actions=item_actions, condition=item_condition)
            if delta != 0:
                balance, balance_actions = balance_part(record.tenant_id, record.contact_id, delta)
                tx.update(balance, actions=balance_actions)
    except (UpdateError, TransactWriteError) as exc:
        if common.conditional_failed(exc) or common.transaction_conflict(exc):
            raise Conflict(f"invoice {record.id!r} changed meanwhile; read it again") from None
        raise


def all_balances(tenant_id: str) -> dict[str, Decimal]:
    """Every contact's maintained account balance (contacts never owed anything are absent: 0)."""
    query = Entity.query(AccountBalance.key(tenant_id))
    return {r.id: Decimal(r.balance or 0) for r in query if isinstance(r, AccountBalance)}


def balances_of(tenant_id: str, contact_ids: Iterable[str]) -> dict[str, Decimal]:
    """The balances of these contacts (absent: 0), 100 a request."""
    key = AccountBalance.key(tenant_id)
    wanted = sorted(set(contact_ids))
    found: dict[str, Decimal] = {}
    # Not common.batch_get: it keys records by pk, and every balance of a tenant shares one pk.
    for start in range(0, len(wanted), common.BATCH_GET_MAX):
        for record in Entity.batch_get([(key, c) for c in wanted[start : start + common.BATCH_GET_MAX]]):
            if isinstance(record, AccountBalance):
                found[record.id] = Decimal(record.balance or 0)
    return found


def balance_of(tenant_id: str, contact_id: str) -> Decimal:
    record = common.find(AccountBalance, AccountBalance.key(tenant_id), contact_id)
    return Decimal(record.balance or 0) if record is not None else ZERO


def rebuild(tenant_id: str) -> dict[str, Decimal]:
    """Recompute every balance from the invoices (data written before balances were maintained).
    An operator's repair, run when no invoice is being written."""
    totals: dict[str, Decimal] = {}
    query = Entity.gsi1.query(
        Invoice.list_key(tenant_id), filter_condition=Invoice.status.is_in(*[str(s) for s in OWING])
    )
    for r in query:
        if isinstance(r, Invoice):
            totals[r.contact_id] = totals.get(r.contact_id, ZERO) + owed(str(r.status), r.balance)
    for contact_id in set(totals) | set(all_balances(tenant_id)):
        AccountBalance(
            AccountBalance.key(tenant_id),
            contact_id,
            tenant_id=tenant_id,
            id=contact_id,
            balance=totals.get(contact_id, ZERO),
            updated_at=now_iso(),
        ).save()
    return totals


__all__ = ["all_balances", "balance_of", "balances_of", "owed", "owed_delta", "rebuild"]
