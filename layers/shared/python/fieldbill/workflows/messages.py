"""Queue message contracts. Every producer and consumer uses these models, nothing hand-built.

Each model is built at its first use (`defer_build`), not at import: building their validators
is cold start that the webhook and the run steps would pay before they send anything.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

# What a scheduled or manual pull can bring from QuickBooks (the schedules in template.yaml);
# `invoices` is the hourly backfill of invoices and payments.
PULL_DATA_TYPES = ("customers", "items", "service_types", "invoices")


class QboSyncMessage(BaseModel):
    """One unit of QuickBooks work on the QBO sync queue (the only way we call QuickBooks)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    kind: Literal[
        "sync_invoice",
        "sync_contact",
        "sync_product",
        "void_invoice",
        "sync_payment",
        "delete_payment",
        # issue 13 (wt-credit): entity_id the invoice, ref our credit memo id
        "sync_credit_memo",
        # wt-credit: QuickBooks' own send; entity_id the invoice, ref the address, version ours
        "send_invoice",
        # wt-life: a removed credit memo deleted there; entity_id the invoice, ref our credit memo id
        "remove_credit_memo",
    ]
    tenant_id: str
    entity_id: str
    # sync_payment: our payment id on the invoice `entity_id`; delete_payment: QuickBooks' Payment Id.
    ref: str | None = None
    run_id: str | None = None
    # The invoice version the sender saw; the consumer syncs the current one and uses the version
    # in the QuickBooks requestid, so a redelivered message never creates a second document.
    version: int | None = None
    # Set on a copy the consumer sends when QuickBooks' budget (or a 429) makes it wait: the
    # copy starts with a fresh receive count, so waiting its turn neither looks like an earlier
    # attempt (a look-up in QuickBooks) nor grows its retry back-off or brings it nearer the DLQ.
    # `attempted`: an earlier delivery may have reached QuickBooks (look it up before creating).
    attempted: bool = False
    handbacks: int = 0
    queued_at_ms: int | None = None  # when the first message was sent (sync latency)


class JobMessage(BaseModel):
    """An asynchronous command started over the API (202 + operation id)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    kind: Literal[
        "compile",
        "generate",
        "invoices_bulk",
        # --- recurring billing (issue 16): draft invoices of a bill profile's period
        "recurring_drafts",
        # services_invoices: the billing page's bulk invoices (issue 17)
        "services_invoices",
    ]
    tenant_id: str
    operation_id: str
    actor: str


class InboundMessage(BaseModel):
    """A QuickBooks change to apply here: from a webhook event, a scheduled pull or a manual sync."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    kind: Literal["delivery", "entity_changed", "pull", "reconcile"]
    realm_id: str | None = None
    tenant_id: str | None = None
    entity: str | None = None  # Customer, Item, Invoice, Payment ...
    entity_id: str | None = None
    operation: str | None = None  # Create, Update, Delete, Merge, Void, Emailed
    last_updated: str | None = None
    data_type: str | None = None  # customers | items | service_types (pulls)
    event_id: str | None = None
    # A webhook delivery as received (base64 of the raw body): the consumer splits it into events.
    delivery: str | None = None
    # Times the limiter made this work wait: each wait is a fresh copy, never a receive (DLQ).
    handbacks: int = 0
    # issue 15: a reconciliation (kind "reconcile"): its operation and period (ISO dates).
    operation_id: str | None = None
    date_from: str | None = None
    date_to: str | None = None
