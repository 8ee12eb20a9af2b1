"""Issue #5 over HTTP on the local stack: connect (real OAuth), settings, status, disconnect, reconnect."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import requests

from fieldbill.quickbooks import tokens
from fieldbill.store.models import Invoice
from fieldbill.workflows.inbound import schedules
from tests.conftest import Client, choose_settings, connect_quickbooks, wait_for
from tests.integration.test_qbo_sync import load_invoice, seed_contact, seed_invoice, seed_product

CONNECT_COOKIE = "fieldbill_qbo_connect"


def oauth_again(client: Client, realm: str) -> dict[str, Any]:
    """The browser leg of a (re)connect to an existing company: consent, then our callback."""
    url = client.ok("GET", "/quickbooks/connect")["authorization_url"]
    consent = requests.get(url + f"&realm={realm}", allow_redirects=False, timeout=30)
    assert consent.status_code in (302, 303), consent.text
    # the browser that called /quickbooks/connect carries its connect cookie back to our callback
    callback = requests.get(consent.headers["Location"], cookies=client.session.cookies, timeout=30)
    assert callback.status_code == 200, callback.text
    return dict(callback.json())


def test_connect_through_oauth_shows_the_company_and_lists_it_for_the_schedules(stack, client: Client):
    # Before: nothing connected, the settings are missing
    before = client.ok("GET", "/quickbooks/connection")
    assert before["status"] == "disconnected" and before["missing_settings"]
    # When the tenant goes through Intuit's consent and our public callback
    realm = connect_quickbooks(stack, client, settings=False)
    # Then the connection is live, names the company (CompanyInfo) and is listed for the schedules
    status = wait_for(
        lambda: (s := client.ok("GET", "/quickbooks/connection"))["company_name"] and s, what="company name"
    )
    assert status["status"] == "connected" and status["realm_id"] == realm
    assert status["company_name"] == f"{client.tenant_id} company"
    assert client.tenant_id in {c.tenant_id for c in schedules.connected_companies()}
    # and the first pull of every data type ran and was recorded
    stack.aws.drain()
    last = client.ok("GET", "/quickbooks/connection")["last_sync"]
    assert {k: v["mode"] for k, v in last.items() if v} == {
        "customers": "query",
        "items": "query",
        "service_types": "query",
    }
    # No token, code or state is ever shown
    assert not [k for k in status if "token" in k or k.endswith("_enc") or k == "oauth_state"]


def test_settings_are_refused_naming_the_field_until_both_accounts_are_chosen(stack, client: Client):
    api = client
    connect_quickbooks(stack, api, settings=False)
    # The lists are read live from QuickBooks
    income = api.ok("GET", "/quickbooks/accounts?type=Income")["items"]
    expense = api.ok("GET", "/quickbooks/accounts?type=Expense")["items"]
    assert {"Services", "Pool Service Income", "Sales of Product Income"} <= {a["name"] for a in income}
    assert {"Cost of Goods Sold", "Chemicals", "Pool Supplies"} <= {a["name"] for a in expense}
    assert not {a["id"] for a in income} & {a["id"] for a in expense}
    assert api.get("/quickbooks/accounts?type=Asset").status_code == 400  # a malformed query parameter

    def refused(body: dict[str, Any]) -> str:
        response = api.request("PUT", "/quickbooks/settings", json=body)
        assert response.status_code == 422, response.text
        fields = response.json()["error"]["fields"]
        assert len(fields) == 1, fields
        return str(fields[0]["field"])

    # Nothing chosen, then the income account only, then an expense account that is not an expense
    # account of this company: each refusal names the field at fault
    assert refused({}) == "default_income_account"
    assert refused({"default_income_account": income[0]["id"]}) == "default_expense_account"
    assert refused(
        {"default_income_account": income[0]["id"], "default_expense_account": income[1]["id"]}
    ) == ("default_expense_account")
    assert refused({"default_income_account": "999999", "default_expense_account": expense[0]["id"]}) == (
        "default_income_account"
    )
    assert api.ok("GET", "/quickbooks/connection")["settings_complete"] is False
    # Both chosen: stored with the keys the sync engine reads
    saved = choose_settings(api)
    assert saved["settings_complete"] is True and saved["missing_settings"] == []
    assert saved["settings"]["automated_tax"] is True and saved["settings"]["custom_txn_numbers"] is False
    from fieldbill.quickbooks.mapping import QboSettings

    record = tokens.get_connection(api.tenant_id)
    assert record is not None
    parsed = QboSettings.from_map(record.settings.as_dict())
    assert parsed.default_income_account == saved["settings"]["default_income_account"]
    assert parsed.default_expense_account == saved["settings"]["default_expense_account"]
    assert parsed.automated_tax is True


def test_settings_and_manual_sync_need_a_live_connection(client: Client):
    body = {"default_income_account": "1", "default_expense_account": "5"}
    assert client.request("PUT", "/quickbooks/settings", json=body).status_code == 409
    assert client.post("/quickbooks/sync/customers").status_code == 409
    assert client.get("/quickbooks/accounts?type=Income").status_code == 409


def test_manual_sync_answers_202_and_records_the_last_sync(stack, connected_client: Client):
    api = connected_client
    stack.aws.drain()
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    stack.emulator.user_create(
        realm,
        "Item",
        {
            "Name": "Filter cartridge",
            "Type": "NonInventory",
            "UnitPrice": "42.50",
            "IncomeAccountRef": {"value": "2"},
        },
    )
    before = api.ok("GET", "/quickbooks/connection")["last_sync"]["items"]["at"]
    accepted = api.ok("POST", "/quickbooks/sync/items", expect=202)
    assert accepted["status"] == "queued" and accepted["data_type"] == "items"
    assert api.post("/quickbooks/sync/invoices").status_code == 422
    stack.aws.drain()
    after = api.ok("GET", "/quickbooks/connection")["last_sync"]["items"]
    assert after["at"] > before and after["mode"] == "cdc"
    products = api.ok("GET", "/products?kind=non_inventory")["items"]
    assert [(p["name"], Decimal(p["default_unit_price"]), p["qbo_id"] is not None) for p in products] == [
        ("Filter cartridge", Decimal("42.50"), True)
    ]


def test_disconnect_then_reconnect_resumes_sync_with_nothing_lost(stack, connected_client: Client):
    api = connected_client
    tenant = api.tenant_id
    stack.aws.drain()
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    # When the tenant disconnects
    status = api.ok("POST", "/quickbooks/disconnect")
    # Then the tokens are gone, the company is no longer pulled, and its settings are kept
    assert status["status"] == "disconnected" and status["settings_complete"] is True
    assert tenant not in {c.tenant_id for c in schedules.connected_companies()}
    record = tokens.get_connection(tenant)
    assert record is not None and record.access_token_enc is None and record.refresh_token_enc is None

    # While disconnected, invoices wait: one queued (its message parked until a reconnect), one whose
    # create had an unknown outcome, one refused for authentication, and one real validation error
    seed_contact(tenant, "Reconnect Pools")
    seed_product(tenant, "Weekly service")
    waiting = {
        "pending": seed_invoice(tenant, "inv-pending"),
        "unknown": seed_invoice(tenant, "inv-unknown"),
        "auth": seed_invoice(tenant, "inv-auth"),
        "invalid": seed_invoice(tenant, "inv-invalid"),
    }
    for key, invoice in waiting.items():
        status_value = {"pending": "pending", "unknown": "unknown"}.get(key, "error")
        actions = [Invoice.sync_status.set(status_value)]
        if key == "auth":
            actions.append(Invoice.sync_error.set({"code": "3200", "message": "AuthenticationFailed"}))
        if key == "invalid":
            actions.append(Invoice.sync_error.set({"code": "6000", "message": "business validation"}))
        invoice.update(actions=actions)

    # When the tenant connects the same company again
    answer = oauth_again(api, realm)
    # Then the connection resumes, and every invoice that waited is synced exactly once
    assert answer["reconnected"] is True and answer["requeued_invoices"] == 3
    assert api.ok("GET", "/quickbooks/connection")["status"] == "connected"
    for key in ("pending", "unknown", "auth"):
        wait_for(lambda k=key: load_invoice(tenant, waiting[k].id).sync_status == "synced", what=key)
    stack.aws.drain()
    in_qbo = stack.emulator.entities(realm, "Invoice")
    ours = {load_invoice(tenant, waiting[k].id).qbo_id for k in ("pending", "unknown", "auth")}
    assert sorted(q["Id"] for q in in_qbo) == sorted(ours)
    # A real validation error is not retried by a reconnect
    assert load_invoice(tenant, "inv-invalid").sync_status == "error"
    # and the company is pulled again on schedule
    assert tenant in {c.tenant_id for c in schedules.connected_companies()}


def test_a_needs_reconnect_connection_is_shown_and_not_pulled(stack, connected_client: Client):
    api = connected_client
    tokens.mark_needs_reconnect(api.tenant_id, "test: refresh token refused")
    status = api.ok("GET", "/quickbooks/connection")
    assert status["status"] == "needs_reconnect"
    assert status["history"][-1]["reason"] == "test: refresh token refused"
    assert api.tenant_id not in {c.tenant_id for c in schedules.connected_companies()}
    assert api.post("/quickbooks/sync/customers").status_code == 409
    # Connecting again (same company) brings it back
    answer = oauth_again(api, status["realm_id"])
    assert answer["reconnected"] is True
    assert api.tenant_id in {c.tenant_id for c in schedules.connected_companies()}


# ------------------------------------------------------------------------------ the callback is bound
# to the browser session that started the connect (issue 12 item 5)
def _consent(stack: Any, client: Client, deny: bool = False) -> tuple[str, str]:
    """Start a connect as the web client does (bearer XHR) and consent at Intuit: the callback
    URL Intuit sends the browser to, and the realm."""
    realm = stack.emulator.create_company(name=f"{client.tenant_id} company")
    url = client.ok("GET", "/quickbooks/connect")["authorization_url"]
    consent = requests.get(
        url + f"&realm={realm}" + ("&deny=1" if deny else ""), allow_redirects=False, timeout=30
    )
    assert consent.status_code in (302, 303), consent.text
    return consent.headers["Location"], realm


def _refused_page(response: requests.Response) -> str:
    """A refused callback: 400 and an HTML page a person can read (never a JSON 500)."""
    assert response.status_code == 400, (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("text/html"), response.headers
    assert "QuickBooks was not connected" in response.text
    return response.text


def _nothing_connected(client: Client, realm: str) -> None:
    status = client.ok("GET", "/quickbooks/connection")
    assert status["status"] == "disconnected" and status["realm_id"] is None, status
    assert tokens.tenant_for_realm(realm) is None


def test_a_bad_state_answers_a_readable_400_page_and_is_logged(stack, capfd, monkeypatch):
    import logging
    import sys

    from fieldbill.observability import logger

    for handler in logger._logger.handlers:
        if type(handler) is logging.StreamHandler:
            monkeypatch.setattr(handler, "stream", sys.stdout)
    capfd.readouterr()
    # When anyone opens the public callback with a state we never issued (no token needed)
    answer = requests.get(
        f"{stack.api_url}/quickbooks/callback",
        params={"code": "AB123", "state": "t-someone.forged", "realmId": "9130"},
        timeout=30,
    )
    # Then a readable page says so, naming a reference, and the refusal is logged with it
    page = _refused_page(answer)
    reference = re.search(r"Reference: <code>([^<]+)</code>", page)
    assert reference, page
    out, err = capfd.readouterr()
    logged = [line for line in (out + err).splitlines() if '"QuickBooks callback refused"' in line]
    assert len(logged) == 1 and reference.group(1) in logged[0], logged


def test_an_intuit_error_or_a_refused_code_answers_the_page_and_connects_nothing(stack, client: Client):
    # The user declines at Intuit: Intuit comes back with ?error=access_denied&state=…
    location, realm = _consent(stack, client, deny=True)
    assert "error=access_denied" in location
    assert "declined" in _refused_page(requests.get(location, cookies=client.session.cookies, timeout=30))
    _nothing_connected(client, realm)
    # A valid state and session with a code Intuit does not accept
    location, realm = _consent(stack, client)
    forged = re.sub(r"code=[^&]+", "code=ABnot-a-code", location)
    _refused_page(requests.get(forged, cookies=client.session.cookies, timeout=30))
    _nothing_connected(client, realm)


def test_a_callback_completed_in_another_browser_connects_nothing(stack, client: Client, tenant_id: str):
    # Given a tenant whose user started a connect (their browser holds the connect cookie)
    location, realm = _consent(stack, client)
    assert client.session.cookies.get(CONNECT_COOKIE), "GET /quickbooks/connect set no session cookie"
    # When the consent is completed in a browser without that cookie (a link sent to someone else)
    _refused_page(requests.get(location, timeout=30))
    # or in a browser holding another connect's cookie (the other user's own pending connect)
    other = Client(stack, f"{tenant_id}-other")
    other.ok("GET", "/quickbooks/connect")
    _refused_page(requests.get(location, cookies=other.session.cookies, timeout=30))
    # Then nothing is connected, to either tenant
    _nothing_connected(client, realm)
    assert other.ok("GET", "/quickbooks/connection")["status"] == "disconnected"
    # And the browser that started it still completes it
    answer = requests.get(location, cookies=client.session.cookies, timeout=30)
    assert answer.status_code == 200, answer.text
    assert client.ok("GET", "/quickbooks/connection")["realm_id"] == realm


def test_a_replayed_callback_is_refused_and_changes_nothing(stack, client: Client):
    location, realm = _consent(stack, client)
    session = dict(client.session.cookies)  # what a captured request would carry, cookie included
    assert requests.get(location, cookies=session, timeout=30).status_code == 200
    before = tokens.get_connection(client.tenant_id)
    assert before is not None and before.status == "connected"
    # When the very same callback (state, code and cookie) comes again
    _refused_page(requests.get(location, cookies=session, timeout=30))
    # Then the connection is untouched
    after = tokens.get_connection(client.tenant_id)
    assert after is not None
    assert (after.token_version, len(after.history), after.realm_id) == (
        before.token_version,
        len(before.history),
        realm,
    )


def test_the_connect_cookie_is_http_only_short_lived_and_scoped_to_the_callback(client: Client):
    answer = client.get("/quickbooks/connect")
    assert answer.status_code == 200, answer.text
    cookie = answer.headers["Set-Cookie"]
    attributes = {a.strip().split("=", 1)[0].lower(): a.strip() for a in cookie.split(";")[1:]}
    assert cookie.startswith(f"{CONNECT_COOKIE}=")
    assert "httponly" in attributes and attributes["samesite"].lower() == "samesite=lax"
    assert attributes["path"] == "Path=/quickbooks/callback"
    assert 0 < int(attributes["max-age"].split("=", 1)[1]) <= 600
    assert "secure" not in attributes  # the local stack is plain http; https sets Secure


def test_disconnecting_a_disconnected_connection_answers_409_and_writes_nothing(stack, connected_client):
    api = connected_client
    api.ok("POST", "/quickbooks/disconnect")
    before = tokens.get_connection(api.tenant_id)
    assert before is not None
    answer = api.post("/quickbooks/disconnect")
    assert answer.status_code == 409, answer.text
    error = answer.json()["error"]
    assert (error["current"], error["requested"]) == ("disconnected", "disconnected")
    after = tokens.get_connection(api.tenant_id)
    assert after is not None and len(after.history) == len(before.history)
    assert after.updated_at == before.updated_at
