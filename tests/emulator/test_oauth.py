"""OAuth 2.0 against intuit-oauth (intuitlib): authorize, code exchange, rotating refresh, revoke."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import jwt
import pytest
import requests
from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError

from tests.emulator.conftest import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, Qbo


def _auth_client(emu) -> AuthClient:
    return AuthClient(CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, environment=emu.discovery_url)


def _authorize(emu, ac: AuthClient, **extra: str) -> dict[str, str]:
    url = ac.get_authorization_url([Scopes.ACCOUNTING], state_token="st-123")
    if extra:
        url += "&" + "&".join(f"{k}={v}" for k, v in extra.items())
    resp = requests.get(url, allow_redirects=False, timeout=5)
    assert resp.status_code == 302, resp.text
    location = resp.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    return {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}


def test_discovery_document(emu):
    doc = requests.get(emu.discovery_url, timeout=5).json()
    for key in ("authorization_endpoint", "token_endpoint", "revocation_endpoint", "userinfo_endpoint"):
        assert doc[key].startswith(emu.url)
    assert "issuer" in doc and "jwks_uri" in doc


def test_full_flow_with_intuitlib(emu, realm):
    ac = _auth_client(emu)
    params = _authorize(emu, ac, realm=realm)
    assert params["state"] == "st-123"
    assert params["realmId"] == realm
    ac.get_bearer_token(params["code"], realm_id=params["realmId"])
    assert ac.access_token and ac.refresh_token
    assert int(ac.expires_in) == 3600
    assert ac.id_token is None

    qbo = Qbo(emu, realm, ac.access_token)
    assert qbo.get("companyinfo/" + realm).status_code == 200

    # refresh rotates: a new refresh token each time, the previous one is spent
    first_refresh = ac.refresh_token
    ac.refresh()
    second_refresh = ac.refresh_token
    assert second_refresh != first_refresh
    with pytest.raises(AuthClientError) as info:
        ac.refresh(refresh_token=first_refresh)
    assert info.value.status_code == 400
    assert info.value.content and '"invalid_grant"' in info.value.content.decode()
    ac.refresh(refresh_token=second_refresh)  # the latest one still works
    assert Qbo(emu, realm, ac.access_token).get("preferences").status_code == 200

    # revoke: the whole grant dies (access and refresh tokens)
    access = ac.access_token
    assert ac.revoke() is True
    resp = Qbo(emu, realm, access).get("preferences")
    assert resp.status_code == 401
    assert resp.json()["fault"]["error"][0]["code"] == "3200"
    with pytest.raises(AuthClientError):
        ac.refresh()


def test_code_is_single_use(emu, realm):
    ac = _auth_client(emu)
    params = _authorize(emu, ac, realm=realm)
    ac.get_bearer_token(params["code"], realm_id=realm)
    with pytest.raises(AuthClientError) as info:
        ac.get_bearer_token(params["code"], realm_id=realm)
    assert info.value.status_code == 400
    assert info.value.response.json() == {"error": "invalid_grant"}


def test_authorize_rejects_bad_requests(emu):
    base = f"{emu.url}/connect/oauth2"
    good = {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "com.intuit.quickbooks.accounting",
        "state": "s",
    }
    assert requests.get(base, params={**good, "client_id": "nope"}, allow_redirects=False).status_code == 400
    bad_redirect = {**good, "redirect_uri": "http://evil/cb"}
    assert requests.get(base, params=bad_redirect, allow_redirects=False).status_code == 400
    resp = requests.get(base, params={**good, "scope": "bogus"}, allow_redirects=False)
    assert resp.status_code == 302 and "error=invalid_scope" in resp.headers["Location"]
    resp = requests.get(base, params={**good, "response_type": "token"}, allow_redirects=False)
    assert "error=unsupported_response_type" in resp.headers["Location"]
    resp = requests.get(base, params={**good, "deny": "1"}, allow_redirects=False)
    assert "error=access_denied" in resp.headers["Location"] and "state=s" in resp.headers["Location"]


def test_token_endpoint_client_auth(emu, realm):
    ac = AuthClient(CLIENT_ID, "wrong-secret", REDIRECT_URI, environment=emu.discovery_url)
    with pytest.raises(AuthClientError) as info:
        ac.refresh(refresh_token="whatever")
    assert info.value.status_code == 401


def test_expired_token_gives_lowercase_3200(emu, realm, tokens):
    qbo = Qbo(emu, realm, tokens["access_token"])
    assert qbo.get("preferences").status_code == 200
    emu.advance(3601)
    resp = qbo.get("preferences")
    assert resp.status_code == 401
    body = resp.json()
    assert body["fault"]["type"] == "AUTHENTICATION"
    err = body["fault"]["error"][0]
    assert err["code"] == "3200"
    assert err["message"] == "message=AuthenticationFailed; errorCode=003200; statusCode=401"
    # the recorded 401 envelope (reference §2): null members, `time` in epoch milliseconds
    assert body["warnings"] is None and body["intuitObject"] is None and err["element"] is None
    assert isinstance(body["time"], int) and abs(body["time"] - emu.clock.now() * 1000) < 60_000
    # the refresh token outlives the access token
    ac = AuthClient(CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, environment=emu.discovery_url)
    ac.refresh(refresh_token=tokens["refresh_token"])
    assert Qbo(emu, realm, ac.access_token).get("preferences").status_code == 200


def test_missing_token_is_lowercase_3200(emu, realm):
    resp = requests.get(f"{emu.api_base}/company/{realm}/preferences", timeout=5)
    assert resp.status_code == 401
    assert resp.json()["fault"]["error"][0]["code"] == "3200"


APP_AUTH_FAILED = "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403"


def _assert_3100(resp: requests.Response) -> None:
    """The lower-case 403 body (reference §2, corrected 2026-12-02; the 120/401 answer was older docs)."""
    assert resp.status_code == 403, resp.text
    body = resp.json()
    assert body["fault"]["type"] == "SERVICE" and "Fault" not in body
    (error,) = body["fault"]["error"]
    assert error["code"] == "3100" and error["message"] == APP_AUTH_FAILED
    # the same gateway envelope as the 401 (a recorded 403 body: null warnings, intuitObject, element)
    assert body["warnings"] is None and body["intuitObject"] is None and error["element"] is None


def test_a_valid_token_on_another_company_is_403_application_authorization_failed(emu, realm, tokens):
    # Given a token that works on its own company
    assert Qbo(emu, realm, tokens["access_token"]).get("preferences").status_code == 200
    # When it is used on another company
    other = emu.create_company()
    resp = Qbo(emu, other, tokens["access_token"]).get("preferences")
    # Then QuickBooks refuses the authorization, not the authentication
    _assert_3100(resp)


def test_a_token_without_the_accounting_scope_is_403_application_authorization_failed(emu, realm):
    # Given an app connected with the openid scope only (the app lacks access to the books)
    granted = emu.oauth.grant_for(CLIENT_ID, realm, ["openid"])
    # When it calls the Accounting API
    resp = Qbo(emu, realm, granted["access_token"]).get("preferences")
    # Then it is an authorization failure
    _assert_3100(resp)


def test_authorize_without_hint_uses_existing_company(emu, realm):
    ac = _auth_client(emu)
    params = _authorize(emu, ac)
    assert params["realmId"] in emu.store.companies


TOKEN_PATH = "/oauth2/v1/tokens/bearer"
FIVE_YEARS = 157_680_000  # seconds: the refresh token's hard lifespan (Intuit, 2025 policy change)


def _refresh_post(emu, refresh_token: str, headers: dict[str, str] | None = None, **form: str):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **form}
    return requests.post(f"{emu.url}{TOKEN_PATH}", data=data, headers=headers or {}, timeout=5)


def test_token_endpoint_accepts_client_secret_post(emu, realm, tokens):
    # Given the discovery document offers client_secret_post beside client_secret_basic
    doc = requests.get(emu.discovery_url, timeout=5).json()
    assert "client_secret_post" in doc["token_endpoint_auth_methods_supported"]
    # When a client sends its credentials in the form instead of HTTP Basic
    resp = _refresh_post(emu, tokens["refresh_token"], client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    # Then the refresh works
    assert resp.status_code == 200, resp.text
    assert resp.json()["refresh_token"] != tokens["refresh_token"]
    # And a wrong secret in the form is refused like a wrong Basic one
    wrong = _refresh_post(emu, resp.json()["refresh_token"], client_id=CLIENT_ID, client_secret="nope")
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"


def test_refresh_token_hard_expiry_is_reported_when_asked(emu, realm, tokens):
    # Given a connection made now (its refresh token lives at most five years from the consent)
    basic = requests.auth._basic_auth_str(CLIENT_ID, CLIENT_SECRET)
    # When a refresh does not ask for the hard expiry
    plain = _refresh_post(emu, tokens["refresh_token"], {"Authorization": basic}).json()
    # Then only the rolling expiry (100 days) is reported
    assert plain["x_refresh_token_expires_in"] == 100 * 86400
    assert "x_refresh_token_hard_expires_in" not in plain
    # When a later refresh asks for it (header x-include-refresh-token-hard-expires-in)
    emu.advance(86400)
    headers = {"Authorization": basic, "x-include-refresh-token-hard-expires-in": "true"}
    asked = _refresh_post(emu, plain["refresh_token"], headers).json()
    # Then the seconds left of the five years since the consent are reported
    assert FIVE_YEARS - 86400 - 5 <= asked["x_refresh_token_hard_expires_in"] <= FIVE_YEARS - 86400


def test_the_rolling_expiry_never_passes_the_hard_expiry(emu, realm):
    # Given a connection 4 years and 300 days old (refreshed all along)
    basic = requests.auth._basic_auth_str(CLIENT_ID, CLIENT_SECRET)
    emu.configure(realm=realm, refresh_token_ttl=10**9)  # the rolling window is not what expires here
    tokens = emu.connect(CLIENT_ID, realm)
    emu.advance(FIVE_YEARS - 65 * 86400)
    answer = _refresh_post(emu, tokens["refresh_token"], {"Authorization": basic}).json()
    # Then the refresh token it gets lives only the 65 days left of the five years
    assert 65 * 86400 - 5 <= answer["x_refresh_token_expires_in"] <= 65 * 86400
    # And after them the company must be connected again
    emu.advance(65 * 86400 + 1)
    late = _refresh_post(emu, answer["refresh_token"], {"Authorization": basic})
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"


def test_the_openid_scope_brings_an_id_token_signed_with_the_published_keys(emu, realm):
    # Given a consent that asks for openid beside accounting
    ac = _auth_client(emu)
    url = ac.get_authorization_url([Scopes.ACCOUNTING, Scopes.OPENID], state_token="st-oidc")
    consent = requests.get(url + f"&realm={realm}", allow_redirects=False, timeout=5)
    params = {k: v[0] for k, v in parse_qs(urlparse(consent.headers["Location"]).query).items()}
    # When the code is exchanged through intuitlib
    ac.get_bearer_token(params["code"], realm_id=realm)
    # Then it carries an id_token that intuitlib accepted: RS256 against the JWKS of the discovery
    # document, our issuer, our client as audience (intuitlib.utils.validate_id_token)
    assert ac.id_token is not None
    claims = jwt.decode(ac.id_token, options={"verify_signature": False})
    assert claims["aud"] == [CLIENT_ID] and claims["realmid"] == realm
    assert claims["iss"] == requests.get(emu.discovery_url, timeout=5).json()["issuer"]
    assert claims["sub"] and claims["exp"] > claims["iat"]
