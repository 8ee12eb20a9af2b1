"""Preview = commit through the real reads and writes (issue 16 Must show,): for random
accounts (services starting and ending anywhere, billable items inside and after the period,
balances owed or in credit, their own terms), skip $0 or not, all or chosen accounts, the
invoices a commit of the preview WRITES to the local DynamoDB are the ones the preview showed,
account for account: id, date, due date, lines, total, tax, balance brought forward; and the
accounts it showed as skipped get none. (The pure plan is held to its own properties in
tests/unit/test_recurring.py; this one holds the store's reads and the bill-once write to it.)"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fieldbill.domain import recurring
from fieldbill.domain.model import Destination
from fieldbill.store import recurring as store
from fieldbill.store.models import (
    META,
    AccountBalance,
    BillableItem,
    Contact,
    Entity,
    Invoice,
    Product,
)
from fieldbill.workflows.recurring import drafts

PROFILE = "bp-prop"
PERIOD = "2026-11"
ACTOR = "user:prop"

amounts = st.decimals(min_value=Decimal("0"), max_value=Decimal("900"), places=2)
service = st.fixed_dictionaries(
    {
        "rate": amounts,
        "start": st.integers(0, 75),  # days after 2026-10-01: before, inside or after November
        "length": st.none() | st.integers(0, 60),
    }
)
item = st.fixed_dictionaries({"amount": amounts, "day": st.integers(0, 40)})  # days after 2026-11-01
account = st.fixed_dictionaries(
    {
        "services": st.lists(service, max_size=2),
        "items": st.lists(item, max_size=2),
        "balance": st.decimals(min_value=Decimal("-50"), max_value=Decimal("800"), places=2),
        "terms": st.none() | st.integers(0, 60),
    }
)


def _seed(tenant: str, accounts: list[dict]) -> list[str]:
    store.create_profile(
        tenant,
        recurring.BillProfile(
            id=PROFILE,
            name="Prop",
            cadence=recurring.Cadence.MONTHLY,
            start_date=date(2026, 1, 1),
            terms_days=30,
        ),
        ACTOR,
    )
    ids = []
    with Entity.batch_write() as batch:
        batch.save(
            Product(
                Product.key(tenant, "p-cart"),
                META,
                tenant_id=tenant,
                id="p-cart",
                gsi1pk=Product.list_key(tenant),
                gsi1sk="cart#p-cart",
                name="Cart pickup",
            )
        )
        for n, spec in enumerate(accounts):
            contact_id = f"c{n:02d}"
            ids.append(contact_id)
            batch.save(
                Contact(
                    Contact.key(tenant, contact_id),
                    META,
                    tenant_id=tenant,
                    id=contact_id,
                    gsi1pk=Contact.list_key(tenant),
                    gsi1sk=f"customer {n}#{contact_id}",
                    name=f"Customer {n}",
                    bill_profile_id=PROFILE,
                    terms_days=spec["terms"],
                )
            )
            for k, it in enumerate(spec["items"]):
                item_id = f"e{n}-{k}.task_entry"
                work = (date(2026, 11, 1) + timedelta(days=it["day"])).isoformat()
                batch.save(
                    BillableItem(
                        BillableItem.key(tenant, item_id),
                        META,
                        tenant_id=tenant,
                        id=item_id,
                        gsi1pk=BillableItem.status_key(tenant, "pending"),
                        gsi1sk=BillableItem.status_sort_key(contact_id, work, item_id),
                        entry_id=f"e{n}-{k}",
                        task_id=f"t{n}",
                        contact_id=contact_id,
                        line_kind="task_entry",
                        description="Bulk pickup",
                        product_id="p-cart",
                        product_name="Cart pickup",
                        quantity=Decimal(1),
                        unit_price=it["amount"],
                        amount=it["amount"],
                        product_scope="task",
                        price_source="task",
                        work_date=work,
                    )
                )
            if spec["balance"]:
                batch.save(
                    AccountBalance(
                        AccountBalance.key(tenant),
                        contact_id,
                        tenant_id=tenant,
                        id=contact_id,
                        balance=spec["balance"],
                    )
                )
    for n, spec in enumerate(accounts):
        for k, sv in enumerate(spec["services"]):
            start = date(2026, 10, 1) + timedelta(days=sv["start"])
            store.create_service(
                tenant,
                recurring.RecurringService(
                    id=f"s{n}-{k}",
                    contact_id=ids[n],
                    name="Weekly cart pickup",
                    product_id="p-cart",
                    product_name="Cart pickup",
                    rate=sv["rate"],
                    basis=recurring.RateBasis.PERIOD,
                    start_date=start,
                    end_date=None if sv["length"] is None else start + timedelta(days=sv["length"]),
                ),
                ACTOR,
            )
    return ids


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    accounts=st.lists(account, min_size=1, max_size=5),
    skip_zero=st.booleans(),
    chosen=st.none() | st.sets(st.integers(0, 4), min_size=1),
    invoice_day=st.none() | st.integers(1, 28),
)
def test_property_a_commit_writes_exactly_the_invoices_its_preview_showed(
    stack, accounts, skip_zero, chosen, invoice_day
):
    # Given random accounts of one profile in a fresh tenant
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    ids = _seed(tenant, accounts)
    picked = None if chosen is None else sorted({ids[n % len(ids)] for n in chosen})
    request = drafts.DraftsRequest(
        bill_profile_id=PROFILE,
        period=PERIOD,
        destination=Destination.LOCAL,
        skip_zero=skip_zero,
        contact_ids=picked,
        invoice_date=None if invoice_day is None else date(2026, 11, invoice_day),
    )
    # When the back office previews, then commits that preview
    shown = drafts.preview(tenant, request)
    committed = request.model_copy(update={"preview_fingerprint": shown.fingerprint})
    result, more = drafts.commit(tenant, ACTOR, committed, lambda _p: None)
    # Then it was not stale and wrote exactly what the preview showed, account for account
    assert more is None and result["stale"] is False
    written = {
        r.contact_id: r
        for r in Entity.gsi1.query(Invoice.list_key(tenant))
        if isinstance(r, Invoice) and r.period_key == PERIOD
    }
    creates = [p for p in shown.accounts if p.action == "create"]
    assert result["counts"]["created"] == len(creates)
    assert set(written) == {p.contact_id for p in creates}
    assert {p.contact_id for p in shown.accounts} == set(picked or ids)
    for plan in creates:
        record, invoice = written[plan.contact_id], plan.invoice
        assert invoice is not None
        assert record.id == plan.invoice_id == invoice.id
        assert (record.issue_date, record.due_date) == (
            invoice.issue_date.isoformat(),
            invoice.due_date.isoformat(),
        )
        assert [(ln.item_id, ln.quantity, ln.unit_price, ln.amount) for ln in record.lines] == [
            (ln.item_id, ln.quantity, ln.unit_price, ln.amount) for ln in invoice.lines
        ]
        assert (Decimal(record.total), Decimal(record.tax_total or 0)) == (plan.total, invoice.tax_total)
        assert Decimal(record.balance_forward) == plan.balance_forward
        # and every line's billable item is on that invoice, once
        for ln in record.lines:
            billed = BillableItem.get(BillableItem.key(tenant, ln.item_id), META)
            assert (billed.status, billed.invoice_id) == ("invoiced", record.id)
