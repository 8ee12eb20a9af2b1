"""Regenerate a draft of a bill profile's period from current data (an invoice group's action).

The draft keeps its id, dates and texts; its lines are planned again by the same domain function
as "create draft invoices", with the items it bills now counted as its own: a service whose rate
changed, a visit completed since, an item made unbillable, a new balance brought forward. The
store rewrites it in one transaction, every item move conditional on the item's status, so bill
once holds (an item another invoice took meanwhile makes the regenerate fail, not double bill).
"""

from __future__ import annotations

import dataclasses
from datetime import date

from fieldbill.domain import model as dm
from fieldbill.domain import recurring
from fieldbill.domain.errors import Conflict, InvalidTransition, ValidationError
from fieldbill.domain.states import INVOICE_MACHINE
from fieldbill.store import invoices
from fieldbill.store import recurring as store
from fieldbill.workflows.billing.destination import invoice_rules


def regenerate_draft(tenant_id: str, invoice_id: str, actor: str) -> bool:
    """True when the draft changed; False when current data gives the same invoice."""
    record = invoices.get(tenant_id, invoice_id)
    if record.status != dm.InvoiceStatus.DRAFT:
        raise InvalidTransition(
            INVOICE_MACHINE.name, record.status, dm.InvoiceStatus.DRAFT, "only a draft is regenerated"
        )
    if not record.bill_profile_id or not record.period_key:
        raise ValidationError("invoice_id", "not a draft of a bill profile's period")
    profile = store.profile_to_domain(store.get_profile(tenant_id, record.bill_profile_id))
    period = recurring.period_for(profile, record.period_key)
    # This account's data only: a group's regenerate runs this for each of its drafts.
    data = store.load_account_data(tenant_id, profile.id, record.contact_id)
    account = next((a for a in data.accounts if a.contact_id == record.contact_id), None)
    if account is None:
        raise ValidationError("invoice_id", "its account no longer has this bill profile")
    own = [
        dataclasses.replace(item, status=dm.ItemStatus.PENDING, invoice_id=None)
        for item in store.items_of(tenant_id, [str(i) for i in record.item_ids or []])
        if item.invoice_id == invoice_id and item.line_kind is not dm.LineKind.RECURRING
    ]
    account = dataclasses.replace(account, pending=(*account.pending, *own))
    run = recurring.RunInput(
        tenant_id=tenant_id,
        profile=profile,
        period=period,
        invoice_date=date.fromisoformat(record.issue_date),
        skip_zero=False,
        destination=dm.Destination(record.destination),
        accounts=(account,),
        unmapped_products=data.unmapped_products,
        # Taxed as "create draft invoices" taxed it (without the rules a regenerated
        # draft lost its tax): the account's code, exemption, or the default.
        tax_rules=invoice_rules(tenant_id, dm.Destination(record.destination)).tax,
    )
    plan = recurring.plan_account(run, account)
    if plan.invoice is None:
        raise Conflict(f"invoice {invoice_id!r} would hold more than {recurring.MAX_LINES} lines")
    return store.rewrite_draft(record, plan.invoice, plan.balance_forward, plan.charges, actor)
