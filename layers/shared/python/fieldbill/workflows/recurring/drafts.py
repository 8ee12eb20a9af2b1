"""Create draft invoices for one bill profile and billing period (issue 16, seed 001).

Preview and commit run the same code: `plan` reads the profile's accounts with their services,
pending billable items and balances (a handful of requests for all of them) and calls the
domain's `plan_run`. The preview answers the plan (and keeps each account's fingerprint for a
day); the commit is an operation (the jobs worker) that plans again and writes each account's
invoice with the store's bill-once write. A commit given the preview's fingerprint refuses to
write when the data changed since, and says which accounts changed.

Long runs: the commit writes accounts in order and, when its time budget is spent, records its
progress (the next account) and queues itself again, so a Lambda never times out on thousands of
accounts. Every write is conditional on (profile, period, account): a page written twice, two
commits at once or a retry after a crash create nothing twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from fieldbill.domain import model as dm
from fieldbill.domain import recurring
from fieldbill.domain.errors import Conflict
from fieldbill.domain.model import Destination
from fieldbill.observability import logger
from fieldbill.store import numbering
from fieldbill.store import recurring as store
from fieldbill.workflows.billing.destination import InvoiceRules, invoice_rules
from fieldbill.workflows.billing.destination import resolve as resolve_destination

RecordId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
PeriodKey = Annotated[str, Field(min_length=7, max_length=10, pattern=r"^[0-9]{4}-[0-9]{2}(-[0-9]{2})?$")]
# Seconds a commit writes before it hands over to a fresh copy of its message (the jobs
# function's time-out is 900 s; the rest is room for the last write and its progress record).
TIME_BUDGET_SECONDS = 600.0
PROGRESS_EVERY = 100
LOOKUP_ACCOUNTS = 50  # accounts whose existing charges one batch get reads (100 keys a request)


class DraftsRequest(BaseModel):
    """Create draft invoices: one profile and period, all or chosen accounts."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    bill_profile_id: RecordId
    period: PeriodKey
    contact_ids: list[RecordId] | None = Field(default=None, min_length=1, max_length=5000)
    invoice_date: date | None = None
    skip_zero: bool | None = Field(default=None, description="the profile's default when absent")
    destination: dm.Destination | None = None
    preview_fingerprint: str | None = Field(default=None, max_length=64)
    # Progress of a commit that queued itself again: the last account written (accounts go in
    # contact-id order, so an account added meanwhile is neither skipped nor written twice).
    start_after: RecordId | None = None


def plan(tenant_id: str, request: DraftsRequest) -> recurring.RunPlan:
    """The plan of this request with the data as it is now (preview and commit alike)."""
    profile = store.profile_to_domain(store.get_profile(tenant_id, request.bill_profile_id))
    period = recurring.period_for(profile, request.period)
    destination = resolve_destination(tenant_id, request.destination)
    tax_rules = invoice_rules(tenant_id, destination).tax
    data = store.load_run_data(tenant_id, profile.id, tax_rules)
    accounts = recurring.select_accounts(data.accounts, request.contact_ids)
    run = recurring.RunInput(
        tenant_id=tenant_id,
        profile=profile,
        period=period,
        invoice_date=request.invoice_date or period.default_invoice_date(),
        skip_zero=profile.skip_zero if request.skip_zero is None else request.skip_zero,
        destination=destination,
        accounts=accounts,
        unmapped_products=data.unmapped_products,
        tax_rules=tax_rules,
    )
    return recurring.plan_run(run)


def preview(tenant_id: str, request: DraftsRequest) -> recurring.RunPlan:
    result = plan(tenant_id, request)
    store.save_preview(
        tenant_id, result.fingerprint, {p.contact_id: p.inputs for p in result.accounts}, result.parameters
    )
    return result


def write_account(
    tenant_id: str,
    account: recurring.AccountPlan,
    plan_: recurring.RunPlan,
    actor: str,
    known: dict[str, Any] | None = None,
    rules: dict[Destination, InvoiceRules] | None = None,
    hint: numbering.Hint | None = None,
) -> str:
    """created | exists | skip_zero | too_many_lines | conflict: one account's part of the commit.
    `known`: charges that are billable items already, read for many accounts at once; `rules`: the
    tenant's invoice rules by destination, read once per commit (a read per account tripled the
    DynamoDB requests per invoice); `hint`: the invoice counter as the last write left it (no read
    of it per invoice)."""
    if account.action != "create" or account.invoice is None:
        return account.action
    rules = {} if rules is None else rules
    destination = account.invoice.destination
    if destination not in rules:
        rules[destination] = invoice_rules(tenant_id, destination)
    if known is None:
        known = store.existing_items(tenant_id, [c.id for c in account.charges]) if account.charges else {}
    existing = {c.id: known[c.id] for c in account.charges if c.id in known}
    for item in existing.values():
        if item.status != str(dm.ItemStatus.PENDING):
            # Billed already: by this very invoice (a retry) or by another one (not twice).
            return "exists" if item.invoice_id == account.invoice_id else "conflict"
    new_charges = [c for c in account.charges if c.id not in existing]
    # A charge billed before whose invoice was deleted is pending again: it moves like any item.
    moved_ids = [i.id for i in account.items] + [c.id for c in account.charges if c.id in existing]
    moved = [existing.get(i) or store.item_stub(tenant_id, i) for i in moved_ids]
    try:
        return store.write_period_invoice(
            account.invoice,
            new_charges,
            moved,
            profile_id=plan_.profile_id,
            period_key=plan_.period.key,
            balance_forward=account.balance_forward,
            actor=actor,
            numbering=rules[destination].numbering,
            hint=hint,
        )
    except Conflict as exc:
        logger.warning(
            "period invoice not written",
            extra={"tenant_id": tenant_id, "contact_id": account.contact_id, "reason": str(exc)},
        )
        return "conflict"


def commit(
    tenant_id: str,
    actor: str,
    request: DraftsRequest,
    progress: Callable[[dict[str, Any]], None],
    budget: float = TIME_BUDGET_SECONDS,
) -> tuple[dict[str, Any], str | None]:
    """Write the plan's invoices after `request.start_after`; the result and, when the budget ran
    out first, the last account written (the caller queues the commit again from there)."""
    started = time.monotonic()
    current = plan(tenant_id, request)
    result: dict[str, Any] = {
        "bill_profile_id": request.bill_profile_id,
        "period": request.period,
        "fingerprint": current.fingerprint,
        "stale": False,
        "totals": _plain(current.totals),
    }
    if request.preview_fingerprint and request.preview_fingerprint != current.fingerprint:
        shown = store.preview_shown(tenant_id, request.preview_fingerprint)
        changes = (
            recurring.changed_accounts(shown.accounts, current, shown.parameters)
            if shown is not None
            else None
        )
        result.update(stale=True, changed=changes, written=0)
        return result, None  # nothing written: preview again
    counts = {"created": 0, "exists": 0, "skip_zero": 0, "too_many_lines": 0, "conflict": 0}
    conflicts: list[str] = []
    accounts = current.accounts
    after = request.start_after
    index = next((n for n, a in enumerate(accounts) if after is None or a.contact_id > after), len(accounts))
    known: dict[str, Any] = {}
    rules: dict[Destination, InvoiceRules] = {}
    hint = numbering.Hint()
    looked_up_until = index
    while index < len(accounts):
        if index >= looked_up_until:
            # The charges of the next accounts that exist already: one batch get for many.
            ahead = accounts[index : index + LOOKUP_ACCOUNTS]
            known = store.existing_items(tenant_id, [c.id for a in ahead for c in a.charges])
            looked_up_until = index + LOOKUP_ACCOUNTS
        outcome = write_account(tenant_id, accounts[index], current, actor, known, rules, hint)
        counts[outcome] += 1
        if outcome == "conflict":
            conflicts.append(accounts[index].contact_id)
        index += 1
        if index % PROGRESS_EVERY == 0:
            progress({**result, "processed": index, "accounts": len(accounts), "counts": dict(counts)})
        if index < len(accounts) and time.monotonic() - started > budget:
            result.update(processed=index, accounts=len(accounts), counts=counts, conflicts=conflicts[:100])
            return result, accounts[index - 1].contact_id
    result.update(processed=index, accounts=len(accounts), counts=counts, conflicts=conflicts[:100])
    return result, None


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
