"""The inbound schedules: exactly as the QuickBooks guide states them plus the hourly invoice
backfill, and one pull per connected company."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.template import Template
from tests.integration.test_qbo_sync import qbo_connect, qbo_tenant

pytestmark = pytest.mark.integration

EXPECTED = {
    # customers every 2 hours on the hour; items hourly at :30; service types on the 1st (UTC)
    "CustomersSync": ("cron(0 0/2 * * ? *)", "customers"),
    "InventorySync": ("cron(30 * * * ? *)", "items"),
    "ServiceTypesSync": ("cron(0 0 1 * ? *)", "service_types"),
    # invoices and payments by change data capture, hourly at :45 (closes any webhook gap)
    "InvoicesBackfill": ("cron(45 * * * ? *)", "invoices"),
    # issue 15: the daily reconciliation of the last month with QuickBooks
    "Reconciliation": ("cron(15 3 * * ? *)", "reconcile"),
}


def test_the_template_declares_exactly_the_four_schedules():
    template = Template()
    found: dict[str, tuple[str, str]] = {}
    for logical_id, resource in template.resources.items():
        for name, event in (resource.get("Properties", {}).get("Events") or {}).items():
            if logical_id == "RunReconcileFunction":
                continue  # the billing run's reconciler, not a QuickBooks pull (test_billing_run.py)
            if event["Type"] in ("Schedule", "ScheduleV2"):
                assert logical_id == "ScheduledPullFunction", f"{name} targets {logical_id}"
                props = event["Properties"]
                found[name] = (props["Schedule"], json.loads(props["Input"])["data_type"])
    assert found == EXPECTED


def test_a_schedule_queues_one_pull_per_connected_company_only(stack, monkeypatch: pytest.MonkeyPatch):
    from fieldbill.quickbooks import tokens
    from fieldbill.workflows.inbound import schedules

    sent: list[Any] = []
    monkeypatch.setattr(schedules, "send_pulls", lambda messages: sent.extend(messages))
    connected, lost, gone = qbo_tenant(), qbo_tenant(), qbo_tenant()
    for tenant in (connected, lost, gone):
        qbo_connect(stack, tenant)
    tokens.mark_needs_reconnect(lost, "test")
    tokens.disconnect(gone)
    # When EventBridge fires the inventory schedule (the local runtime fires it on demand)
    result = stack.aws.fire_schedule("InventorySync")
    # Then exactly the connected companies get a pull of items
    pulled = {m.tenant_id for m in sent}
    assert connected in pulled and lost not in pulled and gone not in pulled
    assert {(m.kind, m.data_type) for m in sent} == {("pull", "items")}
    assert result == {"data_type": "items", "companies": len(sent)}
    record = tokens.get_connection(connected)
    assert record is not None and (record.gsi2pk, record.gsi2sk) == (tokens.CONNECTED_INDEX_KEY, connected)
