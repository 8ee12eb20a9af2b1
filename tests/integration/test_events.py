"""The canonical events in events/ drive the real handlers (the same files work with sam local invoke -e)."""

from __future__ import annotations

import json

from fieldbill.store.models import Contact, Entity
from tests.conftest import load_event


def _as_tenant(event: dict, tenant: str) -> dict:
    event["requestContext"]["authorizer"]["jwt"]["claims"]["tenant_id"] = tenant
    return event


def test_bad_contact_event_is_refused_with_the_field_named_and_nothing_written(stack, tenant_id):
    event = _as_tenant(load_event("api_post_contact_bad.json"), tenant_id)
    response = stack.aws.registry.invoke("ApiFunction", event)
    assert response["statusCode"] == 422
    body = json.loads(response["body"])
    assert [f["field"] for f in body["error"]["fields"]] == ["name"]
    assert Entity.gsi1.count(Contact.list_key(tenant_id)) == 0


def test_list_contacts_event_answers_a_page(stack, tenant_id):
    event = _as_tenant(load_event("api_get_contacts.json"), tenant_id)
    response = stack.aws.registry.invoke("ApiFunction", event)
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"items": [], "next_cursor": None}


def test_run_step_event_for_an_unknown_run_raises_not_found(stack):
    import pytest

    from fieldbill.domain.errors import NotFound

    with pytest.raises(NotFound):
        stack.aws.registry.invoke("RunCompileFunction", load_event("stepfunctions_run_step.json"))


def test_scheduled_event_fires_a_pull_per_connected_company(stack):
    result = stack.aws.registry.invoke("ScheduledPullFunction", load_event("eventbridge_customers_sync.json"))
    assert result["data_type"] == "customers"
