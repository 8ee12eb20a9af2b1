from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, date, datetime

import pytest

from fieldbill.domain.compile import compile_task
from fieldbill.domain.errors import Conflict, InvalidTransition
from fieldbill.domain.invoicing import generate_invoices
from fieldbill.domain.model import EntryStatus, GroupingMode, InvoiceStatus, ItemStatus, RunStatus, SyncStatus
from fieldbill.domain.states import (
    INVOICE_MACHINE,
    ITEM_MACHINE,
    OPERATION_FINISHED,
    OPERATION_MACHINE,
    RUN_MACHINE,
    SYNC_MACHINE,
    OperationStatus,
    bill_entry,
    check_entry_unbilled,
    invoice_item,
    release_item,
    set_invoice_status,
    set_item_status,
    set_sync_status,
    unbill_entry,
)
from tests.unit import factories as f

AT = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
WHO = {"at": AT, "actor": "user-1"}


def _item():
    [item] = compile_task(f.task(), f.contact(), [f.time_entry()], f.assignments(), {}, {})
    return item


def _invoice(item):
    [invoice] = generate_invoices(
        [item], mode=GroupingMode.PER_CONTACT, run_id="r1", issue_date=date(2024, 6, 1)
    )
    return invoice


def test_bill_entry_records_history() -> None:
    # Given an unbilled entry / When billed
    entry, record = bill_entry(f.time_entry(), **WHO)
    # Then it is billed and the change is recorded with who, when, why
    assert entry.status is EntryStatus.BILLED
    assert record.as_dict() == {
        "at": AT.isoformat(),
        "actor": "user-1",
        "from": "unbilled",
        "to": "billed",
        "reason": "compiled",
    }


def test_billing_twice_is_a_conflict() -> None:
    # Given a billed entry / When billed again / Then Conflict (already billed)
    entry, _ = bill_entry(f.time_entry(), **WHO)
    with pytest.raises(Conflict, match="already billed"):
        bill_entry(entry, **WHO)


def test_unbill_requires_every_item_void() -> None:
    # Given a billed entry whose item is still pending
    entry, _ = bill_entry(f.time_entry(), **WHO)
    item = _item()
    # When unbilled / Then refused
    with pytest.raises(InvalidTransition, match=r"e1\.task_entry"):
        unbill_entry(entry, [item], **WHO)
    # And once the item is void, it is allowed
    void, _ = set_item_status(item, ItemStatus.VOID, **WHO)
    unbilled, record = unbill_entry(entry, [void], reason="edit", **WHO)
    assert unbilled.status is EntryStatus.UNBILLED and record.reason == "edit"


def test_item_invoiced_then_released_when_invoice_voided() -> None:
    # Given an invoiced item
    item = _item()
    invoice = _invoice(item)
    invoiced, _ = invoice_item(item, invoice.id, **WHO)
    assert (invoiced.status, invoiced.invoice_id) == (ItemStatus.INVOICED, invoice.id)
    # When released while the invoice is live / Then refused
    with pytest.raises(InvalidTransition):
        release_item(invoiced, invoice, **WHO)
    # When the invoice is voided / Then the item is billable again
    sent, _ = set_invoice_status(invoice, InvoiceStatus.OPEN, **WHO)
    voided, _ = set_invoice_status(sent, InvoiceStatus.VOID, **WHO)
    released, record = release_item(invoiced, voided, **WHO)
    assert (released.status, released.invoice_id, record.reason) == (
        ItemStatus.PENDING,
        None,
        "invoice voided",
    )


def test_item_released_when_invoice_credited() -> None:
    # Given an invoiced item whose sent invoice was credited
    item = _item()
    invoice = _invoice(item)
    invoiced, _ = invoice_item(item, invoice.id, **WHO)
    credited = dataclasses.replace(invoice, status=InvoiceStatus.OPEN, credit_memo_id="cm1")
    # When released / Then it is pending again
    released, _ = release_item(invoiced, credited, **WHO)
    assert released.status is ItemStatus.PENDING


def test_item_pending_unbillable_round_trip() -> None:
    # Given a pending item / When marked unbillable and back
    item, _ = set_item_status(_item(), ItemStatus.UNBILLABLE, **WHO)
    item, _ = set_item_status(item, ItemStatus.PENDING, **WHO)
    # Then it is pending
    assert item.status is ItemStatus.PENDING


def test_invoiced_item_cannot_be_made_unbillable() -> None:
    # Given an invoiced item / When marked unbillable directly / Then refused (it goes through its invoice)
    item, _ = invoice_item(_item(), "inv1", **WHO)
    with pytest.raises(InvalidTransition):
        set_item_status(item, ItemStatus.UNBILLABLE, **WHO)


def test_invoice_lifecycle() -> None:
    # Given a draft invoice / When sent, partly paid, paid, a payment removed, voided
    invoice = _invoice(_item())
    records = []
    for target in (
        InvoiceStatus.OPEN,
        InvoiceStatus.PARTIALLY_PAID,
        InvoiceStatus.PAID,
        InvoiceStatus.OPEN,
        InvoiceStatus.VOID,
    ):
        invoice, record = set_invoice_status(invoice, target, **WHO)
        records.append((record.from_status, record.to_status))
    # Then each step is recorded
    assert records == [
        ("draft", "open"),
        ("open", "partially_paid"),
        ("partially_paid", "paid"),
        ("paid", "open"),
        ("open", "void"),
    ]


def test_a_draft_nobody_wants_is_deleted_not_voided() -> None:
    invoice = _invoice(_item())
    deleted, record = set_invoice_status(invoice, InvoiceStatus.DELETED, **WHO)
    assert (record.from_status, record.to_status) == ("draft", "deleted")
    with pytest.raises(InvalidTransition):
        set_invoice_status(invoice, InvoiceStatus.VOID, **WHO)
    with pytest.raises(InvalidTransition):
        set_invoice_status(deleted, InvoiceStatus.DRAFT, **WHO)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (InvoiceStatus.DRAFT, InvoiceStatus.PAID),  # not payable before it is sent
        (InvoiceStatus.DRAFT, InvoiceStatus.VOID),  # a draft is deleted
        (InvoiceStatus.OPEN, InvoiceStatus.DELETED),  # someone has seen it: void it
        (InvoiceStatus.OPEN, InvoiceStatus.DRAFT),
        (InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.VOID),  # remove its payments first
        (InvoiceStatus.PAID, InvoiceStatus.VOID),
        (InvoiceStatus.PAID, InvoiceStatus.DRAFT),
        (InvoiceStatus.VOID, InvoiceStatus.DRAFT),
        (InvoiceStatus.VOID, InvoiceStatus.OPEN),
        (InvoiceStatus.DELETED, InvoiceStatus.DRAFT),
    ],
)
def test_illegal_invoice_transitions_raise(current, target) -> None:
    # Given an invoice in `current` / When moved to `target` / Then InvalidTransition
    invoice = dataclasses.replace(_invoice(_item()), status=current)
    with pytest.raises(InvalidTransition):
        set_invoice_status(invoice, target, **WHO)


def test_sync_status_transitions() -> None:
    # Given a not-synced invoice / When synced with an error and retried
    invoice = _invoice(_item())
    for target in (SyncStatus.PENDING, SyncStatus.ERROR, SyncStatus.PENDING, SyncStatus.SYNCED):
        invoice, _ = set_sync_status(invoice, target, **WHO)
    # Then it ends synced; skipping pending is illegal
    assert invoice.sync_status is SyncStatus.SYNCED
    with pytest.raises(InvalidTransition):
        set_sync_status(_invoice(_item()), SyncStatus.SYNCED, **WHO)


def test_billing_run_happy_path_and_illegal_jumps() -> None:
    # Given the run machine / When walked in order / Then every step is allowed
    path = [
        RunStatus.QUEUED,
        RunStatus.COMPILING,
        RunStatus.GENERATING,
        RunStatus.SYNCING,
        RunStatus.SUCCEEDED,
    ]
    for current, target in itertools.pairwise(path):
        RUN_MACHINE.transition("run1", current, target, **WHO)
    # And jumps or leaving a terminal state are not
    for current, target in [
        (RunStatus.QUEUED, RunStatus.SYNCING),
        (RunStatus.SUCCEEDED, RunStatus.FAILED),
        (RunStatus.FAILED, RunStatus.COMPILING),
        (RunStatus.COMPILING, RunStatus.PARTIALLY_FAILED),
    ]:
        with pytest.raises(InvalidTransition):
            RUN_MACHINE.transition("run1", current, target, **WHO)


def test_a_run_can_be_cancelled_before_it_ends_and_never_after() -> None:
    for current in (RunStatus.QUEUED, RunStatus.COMPILING, RunStatus.GENERATING, RunStatus.SYNCING):
        RUN_MACHINE.transition("run1", current, RunStatus.CANCELLED, **WHO)
    for current in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.PARTIALLY_FAILED):
        with pytest.raises(InvalidTransition):
            RUN_MACHINE.transition("run1", current, RunStatus.CANCELLED, **WHO)
    # and a cancelled run stays cancelled
    for target in RunStatus:
        assert not RUN_MACHINE.can(RunStatus.CANCELLED, target)


def test_machines_name_every_status() -> None:
    # Given the invoice machine / Then terminal states have no way out
    assert not INVOICE_MACHINE.can(InvoiceStatus.PAID, InvoiceStatus.VOID)
    assert RUN_MACHINE.can(RunStatus.SYNCING, RunStatus.PARTIALLY_FAILED)


# --- QuickBooks' balance ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("current", "balance", "total", "expected"),
    [
        (InvoiceStatus.DRAFT, "0", "120.00", InvoiceStatus.PAID),  # paid there before marked open here
        (InvoiceStatus.DRAFT, "120.00", "120.00", InvoiceStatus.OPEN),  # in QuickBooks: open
        (InvoiceStatus.OPEN, "0", "120.00", InvoiceStatus.PAID),
        (InvoiceStatus.OPEN, "20.00", "120.00", InvoiceStatus.PARTIALLY_PAID),
        (InvoiceStatus.PARTIALLY_PAID, "0", "120.00", InvoiceStatus.PAID),
        (InvoiceStatus.PAID, "20.00", "120.00", InvoiceStatus.PARTIALLY_PAID),  # a payment was deleted
        (InvoiceStatus.PAID, "120.00", "120.00", InvoiceStatus.OPEN),  # every payment deleted
        (InvoiceStatus.PAID, "0", "120.00", InvoiceStatus.PAID),
        (InvoiceStatus.VOID, "0", "120.00", InvoiceStatus.VOID),
        (InvoiceStatus.DELETED, "0", "120.00", InvoiceStatus.DELETED),
        (InvoiceStatus.DRAFT, "0", "0", InvoiceStatus.OPEN),  # a zero invoice is open, not "paid"
        (InvoiceStatus.DRAFT, None, "120.00", InvoiceStatus.DRAFT),
    ],
)
def test_status_from_quickbooks_balance(current, balance, total, expected):
    from decimal import Decimal

    from fieldbill.domain.states import QUICKBOOKS_INVOICE_MACHINE, status_from_quickbooks_balance

    got = status_from_quickbooks_balance(current, Decimal(balance) if balance else None, Decimal(total))
    assert got is expected
    assert got is current or QUICKBOOKS_INVOICE_MACHINE.can(current, got)  # never one it forbids


# =============================================================================================
# --- QuickBooks connection (CONNECTION_MACHINE) ------------------------------------------------
# =============================================================================================
# Imported here, not above: this block stays apart from the shared imports (other machines' tests).
from fieldbill.domain.states import CONNECTION_MACHINE, ConnectionStatus  # noqa: E402


def test_connection_lifecycle_connect_lose_reconnect_disconnect() -> None:
    # Given a company that connects, needs reconnecting, reconnects and disconnects
    path = [
        ConnectionStatus.DISCONNECTED,
        ConnectionStatus.CONNECTED,
        ConnectionStatus.NEEDS_RECONNECT,
        ConnectionStatus.CONNECTED,
        ConnectionStatus.DISCONNECTED,
    ]
    # Then every step is allowed and recorded
    for current, target in itertools.pairwise(path):
        record = CONNECTION_MACHINE.transition("t1", current, target, **WHO)
        assert (record.from_status, record.to_status) == (current.value, target.value)
    # And a company needing reconnect may be disconnected too
    assert CONNECTION_MACHINE.can(ConnectionStatus.NEEDS_RECONNECT, ConnectionStatus.DISCONNECTED)


def test_connection_refuses_what_makes_no_sense() -> None:
    # A disconnected company has no tokens that could go bad
    with pytest.raises(InvalidTransition):
        CONNECTION_MACHINE.transition(
            "t1", ConnectionStatus.DISCONNECTED, ConnectionStatus.NEEDS_RECONNECT, **WHO
        )
    # And a change to the state it is in is a Conflict (a retry treats it as done)
    for status in ConnectionStatus:
        with pytest.raises(Conflict):
            CONNECTION_MACHINE.check("t1", status, status)
    # Every status is named by the machine (none is a dead end)
    assert set(CONNECTION_MACHINE.allowed) == set(ConnectionStatus)


# --- invoice sync: a create whose answer was lost (qbosync) ---------------------------------
def test_a_pending_invoice_whose_create_answer_was_lost_becomes_unknown() -> None:
    # Given a queued invoice / When its create's answer is lost / Then it is unknown
    invoice, _ = set_sync_status(_invoice(_item()), SyncStatus.PENDING, **WHO)
    invoice, record = set_sync_status(invoice, SyncStatus.UNKNOWN, **WHO, reason="answer lost")
    assert invoice.sync_status is SyncStatus.UNKNOWN
    assert (record.from_status, record.to_status) == ("pending", "unknown")


@pytest.mark.parametrize("target", [SyncStatus.SYNCED, SyncStatus.ERROR])
def test_an_unknown_invoice_is_settled_by_its_retry(target) -> None:
    # Given an unknown invoice / When its retry finds or creates it (or QuickBooks refuses it)
    invoice, _ = set_sync_status(_invoice(_item()), SyncStatus.PENDING, **WHO)
    invoice, _ = set_sync_status(invoice, SyncStatus.UNKNOWN, **WHO)
    invoice, record = set_sync_status(invoice, target, **WHO)
    # Then it is settled
    assert invoice.sync_status is target and record.from_status == "unknown"


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (SyncStatus.NOT_SYNCED, SyncStatus.UNKNOWN),  # never sent: cannot be in doubt
        (SyncStatus.SYNCED, SyncStatus.UNKNOWN),  # it has its QuickBooks id
        (SyncStatus.UNKNOWN, SyncStatus.NOT_SYNCED),
        (SyncStatus.UNKNOWN, SyncStatus.PENDING),  # its message is on its way already
    ],
)
def test_unknown_is_reached_and_left_only_through_the_sync(current, target) -> None:
    from fieldbill.domain.states import SYNC_MACHINE

    with pytest.raises(InvalidTransition):
        SYNC_MACHINE.check("inv-1", current, target)


# --- births and operations --------------------------------------------------------------------
def test_a_record_is_born_only_in_an_initial_status() -> None:
    # Given each machine's initial status / Then a birth there records none -> status
    for machine, status in [
        (INVOICE_MACHINE, InvoiceStatus.DRAFT),
        (SYNC_MACHINE, SyncStatus.NOT_SYNCED),
        (ITEM_MACHINE, ItemStatus.PENDING),
        (RUN_MACHINE, RunStatus.QUEUED),
        (OPERATION_MACHINE, OperationStatus.QUEUED),
    ]:
        record = machine.begin("x1", status, **WHO)  # type: ignore[attr-defined]
        assert (record.from_status, record.to_status) == ("", status.value)
    # and nowhere else (an invoice is never born paid, a run never born succeeded)
    for machine, status in [
        (INVOICE_MACHINE, InvoiceStatus.PAID),
        (RUN_MACHINE, RunStatus.SUCCEEDED),
        (ITEM_MACHINE, ItemStatus.INVOICED),
    ]:
        with pytest.raises(InvalidTransition):
            machine.begin("x1", status, **WHO)  # type: ignore[attr-defined]


def test_an_operation_runs_once_and_ends_once() -> None:
    path = [OperationStatus.QUEUED, OperationStatus.RUNNING, OperationStatus.SUCCEEDED]
    for current, target in itertools.pairwise(path):
        OPERATION_MACHINE.transition("op1", current, target, **WHO)
    OPERATION_MACHINE.transition("op1", OperationStatus.QUEUED, OperationStatus.FAILED, **WHO)
    for current, target in [
        (OperationStatus.SUCCEEDED, OperationStatus.RUNNING),
        (OperationStatus.FAILED, OperationStatus.SUCCEEDED),
        (OperationStatus.QUEUED, OperationStatus.SUCCEEDED),
    ]:
        with pytest.raises(InvalidTransition):
            OPERATION_MACHINE.transition("op1", current, target, **WHO)


# --- cancelling an operation (wt-door) ----------------------------------------------------------
def test_a_person_cancels_an_operation_only_before_it_ends() -> None:
    # Given a queued or running operation / Then a person may cancel it
    for current in (OperationStatus.QUEUED, OperationStatus.RUNNING):
        record = OPERATION_MACHINE.transition(
            "op1", current, OperationStatus.CANCELLED, reason="wrong selection", **WHO
        )
        assert (record.from_status, record.to_status, record.reason) == (
            current.value,
            "cancelled",
            "wrong selection",
        )
    # and an ended one is refused, naming the machine and both statuses
    for current in (OperationStatus.SUCCEEDED, OperationStatus.FAILED):
        with pytest.raises(InvalidTransition) as refused:
            OPERATION_MACHINE.transition("op1", current, OperationStatus.CANCELLED, **WHO)
        assert (refused.value.machine, refused.value.from_status, refused.value.to_status) == (
            "operation",
            current,
            "cancelled",
        )
    # and a cancelled operation goes nowhere (its worker may not resume it)
    for target in (OperationStatus.RUNNING, OperationStatus.SUCCEEDED, OperationStatus.FAILED):
        with pytest.raises(InvalidTransition):
            OPERATION_MACHINE.transition("op1", OperationStatus.CANCELLED, target, **WHO)
    assert OperationStatus.CANCELLED in OPERATION_FINISHED
    assert OperationStatus.RUNNING not in OPERATION_FINISHED


# --- a billed entry is frozen (wt-door) -----------------------------------------------------------
def test_a_billed_entry_refuses_edit_stop_and_delete_naming_the_entry_machine() -> None:
    # Given an unbilled entry / Then anything may be asked of it
    for requested in ("edited", "stopped", "deleted"):
        check_entry_unbilled("e1", EntryStatus.UNBILLED, requested)
    # Given a billed entry / Then each is refused, naming task_entry, billed and what was asked
    for requested in ("edited", "stopped", "deleted"):
        with pytest.raises(InvalidTransition) as refused:
            check_entry_unbilled("e1", EntryStatus.BILLED, requested)
        assert (refused.value.machine, refused.value.from_status, refused.value.to_status) == (
            "task_entry",
            "billed",
            requested,
        )
