"""Badges: what a web client shows for an invoice and for a billable service."""

from __future__ import annotations

import pytest

from fieldbill.domain.badges import Badge, BadgeView, invoice_badge, item_badge

ERROR = {
    "code": "6000",
    "message": "A business validation error",
    "detail": "bad",
    "element": "Line",
    "at": "x",
}


@pytest.mark.parametrize(
    ("destination", "sync_status", "expected"),
    [
        ("local", "not_synced", Badge.LOCAL),
        ("local", "error", Badge.LOCAL),  # a local invoice is never sent: no sync state shows
        ("quickbooks", "synced", Badge.QBO),
        ("quickbooks", "not_synced", Badge.PENDING),
        ("quickbooks", "pending", Badge.PENDING),
        ("quickbooks", "unknown", Badge.PENDING),
        ("quickbooks", "error", Badge.ERROR),
    ],
)
def test_invoice_badge_follows_destination_then_sync_status(destination, sync_status, expected):
    assert invoice_badge(destination, sync_status, ERROR).badge is expected


def test_error_badge_carries_quickbooks_reason_and_nothing_else():
    view = invoice_badge("quickbooks", "error", ERROR)
    assert view.as_map() == {
        "badge": "Error",
        "badge_detail": {
            "code": "6000",
            "message": "A business validation error",
            "detail": "bad",
            "element": "Line",
        },
    }
    assert invoice_badge("quickbooks", "synced", ERROR).detail is None


def test_error_badge_without_a_recorded_error_still_has_its_fields():
    assert invoice_badge("quickbooks", "error", None).detail == dict.fromkeys(
        ("code", "message", "detail", "element")
    )


def test_unknown_values_are_refused():
    with pytest.raises(ValueError):
        invoice_badge("desktop", "synced", None)
    with pytest.raises(ValueError):
        invoice_badge("quickbooks", "sent", None)


@pytest.mark.parametrize("status", ["unbillable", "void"])
def test_items_not_billable_are_unbillable_whatever_the_destination(status):
    assert item_badge(status, BadgeView(Badge.QBO), "quickbooks").badge is Badge.UNBILLABLE


def test_invoiced_item_shows_its_invoice_badge():
    error = invoice_badge("quickbooks", "error", ERROR)
    assert item_badge("invoiced", error, "quickbooks") == error
    assert item_badge("invoiced", BadgeView(Badge.LOCAL), "quickbooks").badge is Badge.LOCAL


@pytest.mark.parametrize(("destination", "expected"), [("quickbooks", Badge.QBO), ("local", Badge.LOCAL)])
def test_item_not_invoiced_yet_shows_its_destination(destination, expected):
    assert item_badge("pending", None, destination).badge is expected
    # an invoiced item whose invoice is not at hand falls back on its own destination
    assert item_badge("invoiced", None, destination).badge is expected
