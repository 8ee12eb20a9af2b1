"""Applying QuickBooks changes here: CDC within its window, a query beyond it, deletes, merges,
inactive records, out-of-order versions, linking by name, and events applied once."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal
from typing import Any

import pytest

from fieldbill.quickbooks import mapping, tokens
from fieldbill.quickbooks.client import QboClient
from fieldbill.quickbooks.limiter import RateLimiter
from fieldbill.store import inbound_events
from fieldbill.store.models import META, Contact, Entity, Product, QboConnection, qbo_ref_key
from fieldbill.workflows.inbound import consumer, pulls
from fieldbill.workflows.inbound.applier import Applier
from fieldbill.workflows.messages import InboundMessage
from tests.integration.test_qbo_sync import (
    qbo_connect,
    qbo_tenant,
    seed_contact,
    seed_invoice,
    seed_product,
    send,
    sqs_event,
    wait_settled,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def company(stack: Any) -> tuple[str, str]:
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant)
    stack.emulator.configure(realm, webhooks_enabled=False)
    return tenant, realm


def contact_of(tenant: str, qbo_id: str) -> Contact | None:
    for record in Entity.gsi2.query(qbo_ref_key(tenant, "Customer"), Entity.gsi2sk == qbo_id):
        found = Entity.get(record.pk, META, consistent_read=True)
        return found if isinstance(found, Contact) else None
    return None


def mark(tenant: str, data_type: str) -> dict[str, Any]:
    record = tokens.get_connection(tenant)
    assert record is not None
    return dict(record.watermarks.as_dict().get(data_type) or {})


def test_first_pull_queries_then_cdc_then_a_query_beyond_the_window(stack, company):
    tenant, realm = company
    emu = stack.emulator
    first = emu.user_create(realm, "Customer", {"DisplayName": "Alpha Pools"})
    assert pulls.pull(tenant, "customers").mode == "query"
    assert contact_of(tenant, first["Id"]) is not None
    # within the window: change data capture, only what changed
    second = emu.user_create(realm, "Customer", {"DisplayName": "Beta Pools"})
    result = pulls.pull(tenant, "customers")
    assert (result.mode, result.created) == ("cdc", 1)
    assert contact_of(tenant, second["Id"]) is not None
    # the watermark is per data type: items have none yet
    assert mark(tenant, "customers")["changed_since"] and not mark(tenant, "items")
    # beyond the 30-day window (by our clock): a full query
    record = tokens.get_connection(tenant)
    assert record is not None
    stale = {**mark(tenant, "customers"), "pulled_at_epoch": int(time.time()) - 10**9}
    record.update(actions=[QboConnection.watermarks["customers"].set(stale)])  # type: ignore[index]
    assert pulls.pull(tenant, "customers").mode == "query"
    # QuickBooks refuses a changedSince beyond its window: a full query too
    old = {**mark(tenant, "customers"), "changed_since": "2000-01-01T00:00:00-07:00"}
    record.update(actions=[QboConnection.watermarks["customers"].set(old)])  # type: ignore[index]
    result = pulls.pull(tenant, "customers")
    assert result.mode == "query" and result.created == 0 and result.unchanged == 2


def test_items_and_service_types_are_pulled_apart(stack, company):
    tenant, realm = company
    emu = stack.emulator
    service = emu.user_create(
        realm,
        "Item",
        {"Name": "Weekly clean", "Type": "Service", "UnitPrice": "80", "IncomeAccountRef": {"value": "1"}},
    )
    goods = emu.user_create(
        realm,
        "Item",
        {"Name": "Tablets", "Type": "NonInventory", "UnitPrice": "12.5", "IncomeAccountRef": {"value": "2"}},
    )
    items = pulls.pull(tenant, "items")
    services = pulls.pull(tenant, "service_types")
    assert (items.created, services.created) == (1, 1)
    kinds = {p.qbo_id: p.kind for p in Entity.gsi1.query(Product.list_key(tenant)) if isinstance(p, Product)}
    assert kinds == {service["Id"]: "service", goods["Id"]: "non_inventory"}
    # an item made inactive in QuickBooks is inactive here
    emu.user_edit(realm, "Item", goods["Id"], {"Active": False})
    assert pulls.pull(tenant, "items").deactivated == 1
    product = Entity.get(Product.key(tenant, f"qbo-{goods['Id']}"), META, consistent_read=True)
    assert isinstance(product, Product) and product.active is False and product.name == "Tablets"


def test_a_qbo_customer_with_the_name_of_an_unlinked_contact_is_linked_not_duplicated(stack, company):
    tenant, realm = company
    seed_contact(tenant, "Gamma Pools", contact_id="c-gamma")
    ours = Entity.get(Contact.key(tenant, "c-gamma"), META)
    ours.update(
        actions=[Contact.gsi1pk.set(Contact.list_key(tenant)), Contact.gsi1sk.set("gamma pools#c-gamma")]
    )
    customer = stack.emulator.user_create(realm, "Customer", {"DisplayName": "Gamma Pools"})
    result = pulls.pull(tenant, "customers")
    assert (result.linked, result.created) == (1, 0)
    linked = contact_of(tenant, customer["Id"])
    assert linked is not None and linked.id == "c-gamma"


def test_older_versions_deletes_and_merges(stack, company):
    tenant, realm = company
    emu = stack.emulator
    customer = emu.user_create(realm, "Customer", {"DisplayName": "Delta Pools"})
    emu.user_edit(realm, "Customer", customer["Id"], {"DisplayName": "Delta Pool Care"})
    applier = Applier(tenant, QboClient(tenant))
    current = QboClient(tenant).read("Customer", customer["Id"])
    assert applier.apply_rows("Customer", [current]).created == 1
    # an older copy (lower SyncToken) arriving late changes nothing
    older = {**current, "SyncToken": "0", "DisplayName": "Delta Pools"}
    assert applier.apply_rows("Customer", [older]).unchanged == 1
    assert contact_of(tenant, customer["Id"]).name == "Delta Pool Care"  # type: ignore[union-attr]
    # deleted (or merged away): inactive here, with the reason in its history
    result = applier.apply_rows("Customer", [{"Id": customer["Id"], "status": "Deleted"}])
    assert result.deactivated == 1
    contact = contact_of(tenant, customer["Id"])
    assert contact is not None and contact.active is False
    assert "merged away" in (contact.history[-1].reason or "")
    # a Merge event re-reads the surviving customer
    survivor = emu.user_create(realm, "Customer", {"DisplayName": "Epsilon Pools"})
    assert pulls.apply_event(tenant, "Customer", survivor["Id"], "Merge").created == 1


def test_an_event_is_claimed_once_and_can_be_retried_after_a_failure(stack):
    event_id = f"test:{qbo_tenant()}"
    assert inbound_events.claim(event_id, "realm", "tenant") == "claimed"
    assert inbound_events.claim(event_id, "realm", "tenant") == "busy"
    inbound_events.release(event_id)
    assert inbound_events.claim(event_id, "realm", "tenant") == "claimed"
    inbound_events.mark_applied(event_id)
    assert inbound_events.claim(event_id, "realm", "tenant") == "applied"
    stored = Entity.get(inbound_events.key(event_id), META)
    assert stored.ttl and stored.ttl > time.time() + 3600  # expires by DynamoDB TTL


# ------------------------------------------------------------------------------ the consumer
class SentCopies:
    """Stands in for the consumer's SQS client: keeps what it sends (the handed-back copies)."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.entries += kwargs["Entries"]
        return {"Successful": [{"Id": e["Id"]} for e in kwargs["Entries"]], "Failed": []}


def customer_event(realm: str, customer: dict[str, Any]) -> InboundMessage:
    return InboundMessage(
        kind="entity_changed",
        realm_id=realm,
        entity="Customer",
        entity_id=customer["Id"],
        operation="Create",
        last_updated=customer["MetaData"]["LastUpdatedTime"],
        event_id=f"{realm}:Customer:{customer['Id']}:Create:{uuid.uuid4().hex}",
    )


def test_an_event_deferred_20_times_by_the_limiter_is_still_applied_once(
    stack, company, monkeypatch: pytest.MonkeyPatch
):
    # Given a customer event, and a limiter that has no budget for the company 20 times in a row
    tenant, realm = company
    customer = stack.emulator.user_create(realm, "Customer", {"DisplayName": f"Patient {tenant}"})
    sent = SentCopies()
    monkeypatch.setattr(consumer, "_sqs", lambda: sent)
    real_try = RateLimiter.try_acquire
    refusals = {"left": 20}

    def try_acquire(self: RateLimiter, realm_id: str, **kwargs: Any) -> Any:
        if realm_id == realm and refusals["left"] > 0:
            refusals["left"] -= 1
            return 30.0  # real seconds until a slot frees: more than the permit waits in place
        return real_try(self, realm_id, **kwargs)

    monkeypatch.setattr(RateLimiter, "try_acquire", try_acquire)
    before = stack.emulator.calls(realm)["total"]
    message = customer_event(realm, customer)
    # When it is delivered 20 times while the limiter defers it
    for n in range(1, 21):
        answer = consumer.consume(sqs_event([message]), None)
        # Then each delivery is consumed, not failed (a wait is no receive towards the DLQ) ...
        assert answer["batchItemFailures"] == [], n
        # ... and the same work waits in a fresh copy, delayed by the limiter's wait
        entry = sent.entries[-1]
        message = InboundMessage.model_validate_json(entry["MessageBody"])
        assert message.handbacks == n and message.entity_id == customer["Id"]
        assert 1 <= entry["DelaySeconds"] <= consumer.MAX_DELAY_SECONDS
        assert contact_of(tenant, customer["Id"]) is None
    assert len(sent.entries) == 20 and stack.emulator.calls(realm)["total"] == before
    # When the 21st copy finds budget, and its copy is delivered twice more
    for _ in range(3):
        assert consumer.consume(sqs_event([message]), None)["batchItemFailures"] == []
    # Then the event was applied once: one read from QuickBooks, one contact, one history entry
    assert stack.emulator.calls(realm)["total"] - before == 1
    contact = contact_of(tenant, customer["Id"])
    assert contact is not None and contact.name == f"Patient {tenant}"
    assert len(contact.history) == 1 and inbound_events.applied(str(message.event_id))
    assert len(sent.entries) == 20


class Crash(BaseException):
    """The function dying mid-apply (a time-out or a crash): none of its exception handlers run."""


class LeaseOver:
    """The store's clock, once the claim's lease has run out."""

    @staticmethod
    def time() -> float:
        return time.time() + inbound_events.LEASE_SECONDS + 1


def test_an_event_whose_apply_crashes_after_the_claim_is_applied_on_redelivery(
    stack, company, monkeypatch: pytest.MonkeyPatch
):
    # Given a customer event whose first apply dies after the event was claimed
    tenant, realm = company
    customer = stack.emulator.user_create(realm, "Customer", {"DisplayName": f"Crashed {tenant}"})
    message = customer_event(realm, customer)
    real_apply = consumer.apply_message

    def crash(tenant_id: str, msg: InboundMessage) -> Any:
        raise Crash("killed mid-apply")

    monkeypatch.setattr(consumer, "apply_message", crash)
    with pytest.raises(Crash):
        consumer.consume(sqs_event([message]), None)
    assert contact_of(tenant, customer["Id"]) is None
    assert not inbound_events.applied(str(message.event_id))
    # When it is redelivered while the claim's lease still runs: it waits (another worker may
    # still be applying it), nothing applied twice at once
    monkeypatch.setattr(consumer, "apply_message", real_apply)
    waiting = consumer.consume(sqs_event([message], receive_count=2), None)
    assert len(waiting["batchItemFailures"]) == 1
    assert contact_of(tenant, customer["Id"]) is None
    # When it is redelivered after the lease (the queue's visibility timeout is longer than it)
    monkeypatch.setattr(inbound_events, "time", LeaseOver)
    done = consumer.consume(sqs_event([message], receive_count=3), None)
    # Then it is applied, and marked applied only now
    assert done["batchItemFailures"] == []
    contact = contact_of(tenant, customer["Id"])
    assert contact is not None and contact.name == f"Crashed {tenant}"
    assert inbound_events.applied(str(message.event_id))
    # and a later delivery is dropped as a duplicate
    assert consumer.consume(sqs_event([message], receive_count=4), None)["batchItemFailures"] == []
    assert len(contact_of(tenant, customer["Id"]).history) == 1  # type: ignore[union-attr]


def test_an_event_that_fails_is_not_marked_and_its_redelivery_applies_it(
    stack, company, monkeypatch: pytest.MonkeyPatch
):
    tenant, realm = company
    customer = stack.emulator.user_create(realm, "Customer", {"DisplayName": f"Failed {tenant}"})
    message = customer_event(realm, customer)
    real_apply = consumer.apply_message

    def fail(tenant_id: str, msg: InboundMessage) -> Any:
        raise RuntimeError("the table was unreachable")

    monkeypatch.setattr(consumer, "apply_message", fail)
    assert len(consumer.consume(sqs_event([message]), None)["batchItemFailures"]) == 1
    assert not inbound_events.applied(str(message.event_id))
    monkeypatch.setattr(consumer, "apply_message", real_apply)
    assert consumer.consume(sqs_event([message], receive_count=2), None)["batchItemFailures"] == []
    assert contact_of(tenant, customer["Id"]) is not None and inbound_events.applied(str(message.event_id))


class RefusingSqs:
    """SQS refusing every copy the consumer sends."""

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        return {"Successful": [], "Failed": [{"Id": e["Id"], "Code": "Refused"} for e in kwargs["Entries"]]}


def test_a_wait_whose_copy_sqs_refuses_keeps_the_original_delivery(
    stack, company, monkeypatch: pytest.MonkeyPatch
):
    tenant, realm = company
    customer = stack.emulator.user_create(realm, "Customer", {"DisplayName": f"Kept {tenant}"})
    monkeypatch.setattr(consumer, "_sqs", RefusingSqs)
    monkeypatch.setattr(RateLimiter, "try_acquire", lambda self, realm_id, **kwargs: 30.0)
    event = sqs_event([customer_event(realm, customer)])
    answer = consumer.consume(event, None)
    # the original is reported failed: it comes back by itself, nothing is dropped
    assert answer["batchItemFailures"] == [{"itemIdentifier": event["Records"][0]["messageId"]}]


def test_our_invoice_arriving_in_quickbooks_refreshes_its_customers_balance(stack, company):
    # Given our invoice synced and applied back (QuickBooks holds exactly our copy), while the
    # contact carries the balance QuickBooks reported before the invoice (its customer was read
    # first; QuickBooks sends no event when only a customer's balance changes)
    tenant, realm = company
    seed_contact(tenant, "Balance Pools")
    seed_product(tenant, "Weekly pool service")
    invoice = seed_invoice(tenant)
    send(stack, tenant, invoice.id)
    (synced,) = wait_settled(tenant, [invoice.id])
    assert synced.sync_status == "synced", synced.sync_error
    pulls.apply_event(tenant, "Invoice", str(synced.qbo_id), "Update")
    contact = Entity.get(Contact.key(tenant, "c1"), META, consistent_read=True)
    contact.update(actions=[Contact.balance.set(Decimal("0"))])
    # When QuickBooks' event for that invoice's creation is applied (nothing on it to take)
    applied = pulls.apply_event(tenant, "Invoice", str(synced.qbo_id), "Create")
    # Then the customer is read again: its balance there now includes the invoice
    assert applied.unchanged >= 1
    after = Entity.get(Contact.key(tenant, "c1"), META, consistent_read=True)
    assert Decimal(after.balance) == invoice.total == Decimal("145.00")
    # And a later event for the same unchanged invoice reads nothing more
    calls = stack.emulator.calls(realm)["total"]
    pulls.apply_event(tenant, "Invoice", str(synced.qbo_id), "Update")
    assert stack.emulator.calls(realm)["total"] == calls + 1  # the invoice, not its customer


def test_a_balance_quickbooks_reports_is_kept_in_cents(stack):
    # Given one of our invoices QuickBooks holds (145.00), and QuickBooks' JSON for it after a
    # payment there: 45.0 (a JSON number: no trailing zeros)
    from fieldbill.store import qbo_links

    tenant = qbo_tenant()
    seed_contact(tenant, "Cents Pools")
    invoice = seed_invoice(tenant)
    record = Entity.get(invoice.pk, META, consistent_read=True)
    # When its balance is applied
    qbo_links.apply_invoice_balance(
        record, balance=Decimal("45.0"), total=Decimal("145"), sync_token="1", status=str(record.status),
        actor="test", reason="QuickBooks Invoice 1: balance 45.0",
    )  # fmt: skip
    # Then the invoice shows money as money: cents, as every amount it holds
    after = Entity.get(invoice.pk, META, consistent_read=True)
    assert (str(after.balance), str(after.qbo_total)) == ("45.00", "145.00")


def test_a_payment_removed_here_that_quickbooks_still_holds_does_not_come_back(stack, company):
    # Given our invoice in QuickBooks (145.00) with our payment of 60.00 there too (linked)
    from fieldbill.store import invoices

    tenant, realm = company
    seed_contact(tenant, "Removed Pools")
    seed_product(tenant, "Weekly pool service")
    invoice = seed_invoice(tenant)
    send(stack, tenant, invoice.id)
    (synced,) = wait_settled(tenant, [invoice.id])
    assert synced.sync_status == "synced", synced.sync_error
    invoices.record_payment(
        tenant,
        invoice.id,
        {"id": "chk-1", "amount": Decimal("60.00"), "method": "check", "date": "2026-12-01"},
        "user:test",
    )
    there = stack.emulator.pay_invoice(realm, str(synced.qbo_id), "60.00")
    assert invoices.link_payment(tenant, invoice.id, "chk-1", str(there["Id"]))
    # When the payment is removed here, and QuickBooks' invoice (still paid 60.00: its Payment
    # is not deleted there yet) is applied, as a late event or the backfill would
    invoices.remove_payment(tenant, invoice.id, "chk-1", "user:test", None)
    pulls.apply_event(tenant, "Invoice", str(synced.qbo_id), "Update")
    # Then the invoice stays whole: the removed payment is not taken back from QuickBooks
    after = invoices.get(tenant, invoice.id)
    assert (after.status, str(after.balance), str(after.amount_paid or 0)) == ("open", "145.00", "0")
    # And once QuickBooks' Payment is deleted, the next event finds nothing to change either
    stack.emulator.user_delete(realm, "Payment", str(there["Id"]))
    pulls.apply_event(tenant, "Invoice", str(synced.qbo_id), "Update")
    after = invoices.get(tenant, invoice.id)
    assert (after.status, str(after.balance)) == ("open", "145.00")
    # While a payment made in QuickBooks itself (not ours) still counts here
    stack.emulator.pay_invoice(realm, str(synced.qbo_id), "45.00")
    pulls.apply_event(tenant, "Invoice", str(synced.qbo_id), "Update")
    after = invoices.get(tenant, invoice.id)
    assert (after.status, str(after.balance)) == ("partially_paid", "100.00")


# ---- issue 17: a customer's phone and BillAddr come in too, and our own round trip changes nothing
def test_a_customers_phone_and_structured_address_come_in_without_losing_city_state_or_postal(stack, company):
    tenant, realm = company
    emu = stack.emulator
    # Given a customer made in QuickBooks with a phone and a structured billing address
    made = emu.user_create(
        realm,
        "Customer",
        {
            "DisplayName": "Zeta Pools",
            "PrimaryPhone": {"FreeFormNumber": "(813) 555-0100"},
            "BillAddr": {
                "Line1": "12 Palm Road",
                "City": "Tampa",
                "CountrySubDivisionCode": "FL",
                "PostalCode": "33602",
            },
        },
    )
    assert emu.entity(realm, "Customer", made["Id"])["BillAddr"]["Id"]  # QuickBooks numbers an address
    # When it is pulled, the contact carries both
    assert pulls.pull(tenant, "customers").created == 1
    contact = contact_of(tenant, made["Id"])
    assert contact is not None
    assert (contact.phone, contact.address) == ("(813) 555-0100", "12 Palm Road\nTampa, FL 33602")
    # When QuickBooks changes them (an event re-reads the customer), the contact follows
    emu.user_edit(
        realm,
        "Customer",
        made["Id"],
        {
            "PrimaryPhone": {"FreeFormNumber": "813-555-0199"},
            "BillAddr": {"Line1": "9 Bay St", "City": "Tampa"},
        },
    )
    assert pulls.apply_event(tenant, "Customer", made["Id"], "Update").updated == 1
    contact = contact_of(tenant, made["Id"])
    assert contact is not None
    assert (contact.phone, contact.address) == ("813-555-0199", "9 Bay St\nTampa")
    assert "address, phone" in (contact.history[-1].reason or "")


def test_our_phone_and_address_through_quickbooks_and_back_are_no_change(stack, company):
    tenant, realm = company
    emu = stack.emulator
    # Given our contact with a phone and an address, and its customer as our push writes it
    record = seed_contact(tenant, "Eta Pools", "c-eta")
    record.update(
        actions=[
            Contact.phone.set("(813) 555-0100"),
            Contact.address.set("12 Palm Road\nTampa, FL 33602"),
            Contact.gsi1pk.set(Contact.list_key(tenant)),
            Contact.gsi1sk.set("eta pools#c-eta"),
        ]
    )
    body = mapping.contact_to_qbo(
        "Eta Pools", "owner@example.com", phone=record.phone, address=record.address
    )
    made = emu.user_create(realm, "Customer", body)
    assert pulls.pull(tenant, "customers").linked == 1
    # When QuickBooks changes something else only
    emu.user_edit(realm, "Customer", made["Id"], {"PrimaryEmailAddr": {"Address": "new@example.com"}})
    result = pulls.apply_event(tenant, "Customer", made["Id"], "Update")
    # Then only the email changed here: our phone and address are not seen as changes
    contact = contact_of(tenant, made["Id"])
    assert contact is not None and result.updated == 1
    assert (contact.phone, contact.address, contact.email) == (
        "(813) 555-0100",
        "12 Palm Road\nTampa, FL 33602",
        "new@example.com",
    )
    assert (contact.history[-1].reason or "").endswith(": email")
    # and the same version applied again is no change at all
    assert pulls.apply_event(tenant, "Customer", made["Id"], "Update").unchanged == 1


def test_linking_by_name_keeps_our_phone_and_address_when_quickbooks_has_none(stack, company):
    tenant, realm = company
    # Given our contact with a phone and an address, not linked yet
    record = seed_contact(tenant, "Kappa Pools", "c-kappa")
    record.update(
        actions=[
            Contact.phone.set("813-555-0122"),
            Contact.address.set("3 Gulf Blvd"),
            Contact.gsi1pk.set(Contact.list_key(tenant)),
            Contact.gsi1sk.set("kappa pools#c-kappa"),
        ]
    )
    # When a customer of that name without them is pulled, it is linked
    made = stack.emulator.user_create(realm, "Customer", {"DisplayName": "Kappa Pools"})
    assert pulls.pull(tenant, "customers").linked == 1
    # Then an absence there does not erase ours
    contact = contact_of(tenant, made["Id"])
    assert contact is not None and (contact.phone, contact.address) == ("813-555-0122", "3 Gulf Blvd")
