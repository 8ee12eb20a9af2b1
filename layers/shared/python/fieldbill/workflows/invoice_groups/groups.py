"""Invoice groups (issue 16 item 6): membership, the charts and totals, and the group's actions.

The actions reuse the invoice commands: email all / unpaid and mark drafts sent are the bulk
operation of workflows/invoices/bulk.py over the group's invoices (send = the one send command,
with its PDF and the outbox locally); download all is the print-many of
workflows/documents/prints.py; regenerate drafts rebuilds each draft of a bill profile's period
from current data (workflows/recurring/regenerate.py), bill once kept.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from fieldbill.domain import invoice_groups as dgroups
from fieldbill.domain.errors import ValidationError
from fieldbill.store import invoice_groups as store


def add_selection(
    tenant_id: str, actor: str, group_id: str | None, group_name: str | None, invoice_ids: Sequence[str]
) -> dict[str, Any]:
    """The bulk action "add to a group": the group exists already (the API created a new one)."""
    if not group_id:
        raise ValidationError("group_id", "name the group (the API creates a new one first)")
    added = store.add(tenant_id, group_id, invoice_ids, actor)
    return {
        "action": "add_to_group",
        "group_id": group_id,
        "group_name": group_name,
        "total": len(invoice_ids),
        "processed": len(invoice_ids),
        "done": added,
        "refused": [],
    }


def member(record: Any) -> dgroups.Member:
    return dgroups.Member(
        status=str(record.status),
        total=Decimal(record.total or 0),
        balance=Decimal(record.balance if record.balance is not None else record.total or 0),
        amount_paid=Decimal(record.amount_paid or 0),
        due_date=date.fromisoformat(record.due_date) if record.due_date else None,
        delivery_status=record.delivery_status,
    )


def summary(tenant_id: str, group_id: str, today: date) -> tuple[Any, list[Any], dgroups.Summary]:
    group = store.get(tenant_id, group_id)
    records = store.invoices(tenant_id, group_id)
    return group, records, dgroups.summarize((member(r) for r in records), today)


def invoices_page(
    group_id: str, records: Sequence[Any], limit: int, cursor: str | None
) -> tuple[list[Any], str | None]:
    """A page of the group's invoices (in invoice-id order, as the group keeps them), after the
    cursor of the previous page; the cursor names its group, so another group's is refused."""
    after = ""
    if cursor:
        try:
            value = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        except ValueError:
            value = None
        if (
            not isinstance(value, dict)
            or value.get("group") != group_id
            or not isinstance(value.get("after"), str)
        ):
            raise ValidationError("cursor", "not a cursor this API returned for this group")
        after = value["after"]
    rest = sorted((r for r in records if str(r.id) > after), key=lambda r: str(r.id))
    shown = rest[:limit]
    if len(rest) <= limit:
        return shown, None
    token = json.dumps({"group": group_id, "after": str(shown[-1].id)})
    return shown, base64.urlsafe_b64encode(token.encode()).decode()


def selection(tenant_id: str, group_id: str, which: str) -> list[str]:
    """The group's invoice ids an action works on: all (not void or deleted), unpaid, drafts."""
    store.get(tenant_id, group_id)
    records = store.invoices(tenant_id, group_id)
    if which == "drafts":
        return [r.id for r in records if r.status == "draft"]
    if which == "unpaid":
        return [r.id for r in records if dgroups.is_unpaid(str(r.status))]
    return [r.id for r in records if r.status not in dgroups.LEFT_OUT]
