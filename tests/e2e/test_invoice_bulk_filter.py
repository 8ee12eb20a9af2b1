"""Issue 13 item 6: a bulk command on a FILTER (the list's own filters, checked by the list's own
parser), resolved page by page by the operation worker: every matching invoice done or refused
with why; a bad or unknown filter is 400 naming it and queues nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Client
from tests.e2e.test_invoice_lifecycle import _run, _work


def _bulk(api: Client, body: dict[str, Any]) -> dict[str, Any]:
    op = api.ok("POST", "/invoices/bulk", json=body, expect=202)
    done = api.wait_operation(op["operation_id"])
    assert done["status"] == "succeeded", done
    return dict(done["result"])


def _status(api: Client, invoice_id: str) -> str:
    return str(api.ok("GET", f"/invoices/{invoice_id}")["status"])


def test_bulk_on_a_filter_marks_one_contacts_drafts_sent_then_voids_by_balance(
    client: Client, monkeypatch: pytest.MonkeyPatch
):
    from fieldbill.workflows.invoices import bulk

    # The worker reads the filter's matches a page at a time: one invoice a page here, so that
    # several pages (with commands done between them) are walked.
    monkeypatch.setattr(bulk, "FILTER_PAGE", 1)
    api = client
    # Given two drafts of c-a (160.00 and 80.00) and one of c-b (80.00)
    _work(api, "c-a", entries=2, day=5)
    _work(api, "c-b", entries=1, day=5)
    first = {i["contact_id"]: i for i in _run(api, issue_date="2026-10-20")}
    api.ok(
        "POST",
        "/tasks/task-c-a/entries",
        json={"id": "late", "kind": "time", "started_at": "2026-10-21T09:00:00+00:00"},
    )
    api.ok("POST", "/tasks/task-c-a/entries/late/stop", json={"stopped_at": "2026-10-21T10:00:00+00:00"})
    (second,) = _run(api, issue_date="2026-10-25")
    a1, a2, b = first["c-a"]["id"], second["id"], first["c-b"]["id"]
    assert [first["c-a"]["total"], second["total"], first["c-b"]["total"]] == ["160.00", "80.00", "80.00"]

    # When every draft of c-a is marked sent by a filter
    result = _bulk(api, {"action": "mark_sent", "filter": {"contact_id": "c-a", "status": "draft"}})
    # Then both of c-a's are open, c-b's is still a draft, and the result says so
    assert (result["action"], result["total"], result["processed"]) == ("mark_sent", 2, 2)
    assert sorted(result["done"]) == sorted([a1, a2]) and result["refused"] == []
    assert [_status(api, i) for i in (a1, a2, b)] == ["open", "open", "draft"]

    # When invoices of a balance of at least 80.00 issued on 2026-10-20 are voided: the open one is
    # voided, c-b's draft (a draft is deleted, never voided) is refused with why
    result = _bulk(
        api,
        {
            "action": "void",
            "reason": "billed twice",
            "filter": {"balance": "gte:80", "issue_date_from": "2026-10-20", "issue_date_to": "2026-10-20"},
        },
    )
    assert (result["total"], result["processed"], result["done"]) == (2, 2, [a1])
    assert [(r["invoice_id"], r["code"]) for r in result["refused"]] == [(b, "invalid_transition")]
    assert [_status(api, i) for i in (a1, a2, b)] == ["void", "open", "draft"]
    # And a filter nothing matches is an operation that did nothing
    result = _bulk(api, {"action": "void", "filter": {"balance": "gt:100000"}})
    assert (result["total"], result["processed"], result["done"], result["refused"]) == (0, 0, [], [])


def test_a_bad_or_unknown_filter_is_400_naming_it_and_queues_nothing(client: Client):
    api = client
    _work(api, "c-a", entries=1)
    (invoice,) = _run(api)

    def refused(body: dict[str, Any], status: int, field: str) -> None:
        response = api.post("/invoices/bulk", json=body)
        assert response.status_code == status, response.text
        fields = [f["field"] for f in response.json()["error"]["fields"]]
        assert field in fields, response.text

    refused({"action": "mark_sent", "filter": {"stauts": "draft"}}, 400, "filter.stauts")
    refused({"action": "mark_sent", "filter": {"balance": "more:1"}}, 400, "filter.balance")
    refused({"action": "mark_sent", "filter": {"status": "drafty"}}, 400, "filter.status")
    refused(
        {"action": "mark_sent", "filter": {"issue_date_from": "2026-13-01"}}, 400, "filter.issue_date_from"
    )
    refused(
        {"action": "mark_sent", "filter": {"issue_date_from": "2026-10-02", "issue_date_to": "2026-10-01"}},
        400,
        "filter.issue_date_to",
    )
    # The paging parameters are not filters
    refused({"action": "mark_sent", "filter": {"limit": "5"}}, 400, "filter.limit")
    # Exactly one of a selection and a filter
    refused(
        {"action": "mark_sent", "filter": {"status": "draft"}, "invoice_ids": [invoice["id"]]}, 422, "filter"
    )
    refused({"action": "mark_sent"}, 422, "invoice_ids")
    # Nothing was queued: the draft is still a draft, and no operation ran on it
    assert _status(api, invoice["id"]) == "draft"
    # An empty filter is every invoice (as the list without filters)
    result = _bulk(api, {"action": "mark_sent", "filter": {}})
    assert result["done"] == [invoice["id"]]
    # The same Idempotency-Key and body answers the same operation again
    headers = {"Idempotency-Key": f"bulk-{api.tenant_id}"}
    body = {"action": "sync", "filter": {"status": "open"}}
    one = api.post("/invoices/bulk", json=body, headers=headers)
    two = api.post("/invoices/bulk", json=body, headers=headers)
    assert one.status_code == two.status_code == 202, (one.text, two.text)
    assert one.json()["operation_id"] == two.json()["operation_id"]
    assert two.headers.get("Idempotent-Replayed") == "true"
