"""The declarative key prefixes build byte for byte the keys the table already holds.

Each expected string is the format the per-model builder functions wrote before PREFIX/LIST
replaced them: a stored record must still be found at the same key.
"""

from __future__ import annotations

import pytest

from fieldbill.store import models as m

T, ID = "acme", "r1"


@pytest.mark.parametrize(
    ("built", "stored"),
    [
        (m.Contact.key(T, ID), f"T#{T}#CONTACT#{ID}"),
        (m.Contact.list_key(T), f"T#{T}#CONTACTS"),
        (m.Product.key(T, ID), f"T#{T}#PRODUCT#{ID}"),
        (m.Product.list_key(T), f"T#{T}#PRODUCTS"),
        (m.PriceList.key(T, ID), f"T#{T}#PRICELIST#{ID}"),
        (m.PriceList.list_key(T), f"T#{T}#PRICELISTS"),
        (m.Membership.key(T, ID), f"T#{T}#MEMBERSHIP#{ID}"),
        (m.Membership.list_key(T), f"T#{T}#MEMBERSHIPS"),
        (m.Team.key(T, ID), f"T#{T}#TEAM#{ID}"),
        (m.Team.list_key(T), f"T#{T}#TEAMS"),
        (m.ProductAssignment.key(T), f"T#{T}#ASSIGN"),
        (m.ProductAssignment.sort_key("contact", "c1", "goods"), "contact#c1#goods"),
        (m.Task.key(T, ID), f"T#{T}#TASK#{ID}"),
        (m.Task.list_key(T), f"T#{T}#TASKS"),
        (m.TaskEntry.key(T, "t1"), f"T#{T}#TASK#t1"),
        (m.TaskEntry.sort_key("e1"), "ENTRY#e1"),
        (m.TaskEntry.unbilled_key(T), f"T#{T}#UNBILLED"),
        (m.TaskEntry.unbilled_sort_key("2026-11-02", "t1", "e1"), "2026-11-02#t1#e1"),
        (m.BillableItem.key(T, ID), f"T#{T}#ITEM#{ID}"),
        (m.BillableItem.status_key(T, "pending"), f"T#{T}#ITEMS#pending"),
        (m.BillableItem.status_sort_key("c1", "2026-11-02", ID), f"c1#2026-11-02#{ID}"),
        (m.Invoice.key(T, ID), f"T#{T}#INVOICE#{ID}"),
        (m.Invoice.list_key(T), f"T#{T}#INVOICES"),
        (m.Invoice.run_key(T, "run1"), f"T#{T}#RUN#run1#INVOICES"),
        (m.Invoice.run_sort_key("synced", ID), f"synced#{ID}"),
        # the journal's sparse index of posted job invoices (wt-jobs2)
        (m.Invoice.posted_key(T), f"T#{T}#POSTED"),
        (m.Invoice.posted_sort_key("2026-12-03T10:00:00.000Z", ID), f"2026-12-03T10:00:00.000Z#{ID}"),
        (m.BillingRun.key(T, ID), f"T#{T}#RUN#{ID}"),
        (m.BillingRun.list_key(T), f"T#{T}#RUNS"),
        (m.RunLock.key(T, "all"), f"T#{T}#RUNLOCK#all"),
        (m.Operation.key(T, ID), f"T#{T}#OP#{ID}"),
        (m.QboConnection.key(T), f"T#{T}#QBO"),
        (m.QboConnection.realm_key("9130"), "REALM#9130"),
        (m.QboConnection.connected_key(), "QBO#CONNECTED"),
        (m.InboundEvent.key("ev1"), "QBOEVENT#ev1"),
        (m.SentMessage.key(T, "msg1"), f"T#{T}#MESSAGE#msg1"),
        (m.SentMessage.ses_key("ses1"), "SESMESSAGE#ses1"),
        (m.qbo_ref_key(T, "Customer"), f"T#{T}#QBO#Customer"),
        # issue 15: numbering
        (m.NumberSequence.key(T, "invoice"), f"T#{T}#SEQ#invoice"),
        (m.NumberClaim.key(T, "invoice", "1001"), f"T#{T}#NUMBER#invoice#1001"),
        # --- recurring billing (issue 16)
        (m.BillProfile.key(T, ID), f"T#{T}#BILLPROFILE#{ID}"),
        (m.BillProfile.list_key(T), f"T#{T}#BILLPROFILES"),
        (m.RecurringService.key(T, ID), f"T#{T}#RSERVICE#{ID}"),
        (m.RecurringService.list_key(T), f"T#{T}#RSERVICES"),
        (m.RecurringService.list_sort_key("c1", ID), f"c1#{ID}"),
        (m.AccountBalance.key(T), f"T#{T}#ACCTBAL"),
        (m.InvoiceGroup.key(T, ID), f"T#{T}#IGROUP#{ID}"),
        (m.InvoiceGroup.list_key(T), f"T#{T}#IGROUPS"),
        (m.InvoiceGroup.member_sort_key("i1"), "INV#i1"),
        (m.PeriodPreview.key(T, "f1"), f"T#{T}#RPREVIEW#f1"),
        (m.PeriodPreview.part_sort_key(3), "PART#0003"),  # A big preview in parts
        # --- job-shop jobs (issue 14)
        (m.Job.key(T, ID), f"T#{T}#JOB#{ID}"),
        (m.Job.list_key(T), f"T#{T}#JOBS"),
        (m.JobBillingSettings.key(T), f"T#{T}#JOBSETTINGS"),
        (m.TaxCode.key(T, "ca"), f"T#{T}#TAXCODE#ca"),
        (m.TaxCode.list_key(T), f"T#{T}#TAXCODES"),
        # ---- issue 17: completed services
        (m.Worker.key(T, ID), f"T#{T}#WORKER#{ID}"),
        (m.Worker.list_key(T), f"T#{T}#WORKERS"),
        (m.WorkerUser.key(T, "user-1"), f"T#{T}#WORKERUSER#user-1"),
        (m.Backfill.key(T, "posted_index"), f"T#{T}#BACKFILL#posted_index"),
        (m.CustomerPrice.key(T, "c1"), f"T#{T}#CONTACT#c1"),
        (m.CustomerPrice.sort_key("p1"), "PRICE#p1"),
        (m.BillingSettings.key(T), f"T#{T}#BILLINGSETTINGS"),
        (m.Visit.key(T, ID), f"T#{T}#VISIT#{ID}"),
        (m.Visit.list_key(T), f"T#{T}#VISITS"),
        (m.Visit.list_sort_key("2026-11-03", ID), f"2026-11-03#{ID}"),
    ],
)
def test_each_entity_builds_its_stored_key(built: str, stored: str) -> None:
    assert built == stored


def test_every_entity_has_its_keys_pinned_above() -> None:
    """A new entity must add its key formats to this file."""
    pinned = {
        "Contact", "Product", "PriceList", "Membership", "Team", "ProductAssignment", "Task",
        "TaskEntry", "BillableItem", "Invoice", "BillingRun", "RunLock", "Operation",
        "QboConnection", "InboundEvent", "SentMessage",
        "NumberSequence", "NumberClaim",  # issue 15
        # job-shop jobs (issue 14)
        "Job", "JobBillingSettings",
    }  # fmt: skip
    # --- recurring billing (issue 16)
    pinned |= {
        "BillProfile", "RecurringService", "AccountBalance", "InvoiceGroup", "InvoiceGroupMember",
        "PeriodPreview",
        "NumberSequence", "NumberClaim", "TaxCode",  # issue 15
    }  # fmt: skip
    # ---- issue 17: completed services
    pinned |= {"Worker", "CustomerPrice", "BillingSettings", "Visit"}
    pinned |= {"WorkerUser"}  # One worker per user
    pinned |= {"Backfill"}  # back-fills done per tenant (store/backfills.py)
    entities = {
        name
        for name, value in vars(m).items()
        if isinstance(value, type) and issubclass(value, m.Entity) and value is not m.Entity
    }
    assert entities == pinned
