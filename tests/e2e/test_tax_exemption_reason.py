"""A tax-exempt contact's exemption reason over HTTP (issue 15, decision 0010): one of Intuit's
TaxExemptionReasonId values (1-15) or 422 naming `tax_exemption_reason`; the customer in
QuickBooks gets it beside Taxable false; a contact no longer exempt loses it."""

from __future__ import annotations

from typing import Any

from tests.conftest import Client, wait_for


def _customer(stack: Any, api: Client, realm: str, contact_id: str, **expected: Any) -> dict[str, Any]:
    def pushed() -> dict[str, Any] | bool:
        contact = api.ok("GET", f"/contacts/{contact_id}")
        if not contact.get("qbo_id"):
            return False
        customer = stack.emulator.entity(realm, "Customer", contact["qbo_id"])
        return all(customer.get(k) == v for k, v in expected.items()) and customer

    return wait_for(pushed, timeout=30, what=f"customer {contact_id} in QuickBooks with {expected}")


def test_an_exempt_contacts_reason_is_checked_and_sent_to_quickbooks(stack, connected_client: Client):
    api = connected_client
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    # A reason outside Intuit's list, or for a contact that is not exempt, is refused naming it
    for body in (
        {"name": "Bad", "tax_exempt": True, "tax_exemption_reason": 16},
        {"name": "Bad", "tax_exempt": True, "tax_exemption_reason": 0},
        {"name": "Bad", "tax_exemption_reason": 9},
        {"name": "Bad", "tax_exempt": False, "tax_exemption_reason": 9},
    ):
        refused = api.post("/contacts", json=body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["fields"][0]["field"] == "tax_exemption_reason"
    assert not [c for c in api.ok("GET", "/contacts")["items"] if c["name"] == "Bad"]  # nothing written

    # An exempt reseller (9 Resale) is a non-taxable customer with that reason in QuickBooks
    made = api.ok(
        "POST",
        "/contacts",
        json={"id": "c-res", "name": "Reseller", "tax_exempt": True, "tax_exemption_reason": 9},
    )
    assert (made["tax_exempt"], made["tax_exemption_reason"]) == (True, 9)
    _customer(stack, api, realm, "c-res", Taxable=False, TaxExemptionReasonId=9)
    # The reason changes (5 Charitable organization) and QuickBooks follows
    changed = api.ok("PATCH", "/contacts/c-res", json={"tax_exemption_reason": 5})
    assert changed["tax_exemption_reason"] == 5
    _customer(stack, api, realm, "c-res", Taxable=False, TaxExemptionReasonId=5)
    # An unknown reason on a patch is refused and changes nothing
    refused = api.patch("/contacts/c-res", json={"tax_exemption_reason": 99})
    assert refused.status_code == 422 and "tax_exemption_reason" in refused.text
    assert api.ok("GET", "/contacts/c-res")["tax_exemption_reason"] == 5
    # No longer exempt: the reason goes with it, and the customer is taxable again
    taxed = api.ok("PATCH", "/contacts/c-res", json={"tax_exempt": False})
    assert (taxed["tax_exempt"], taxed["tax_exemption_reason"]) == (False, None)
    _customer(stack, api, realm, "c-res", Taxable=True)
