"""Issue 13 item 6 (wt-life): the invoice list and a bulk command on a filter share ONE parser of
the list's filters: the same names, the same values refused, naming the filter where it was given."""

from __future__ import annotations

import inspect
from datetime import date
from decimal import Decimal

import pytest

from fieldbill.api import routes_invoices
from fieldbill.domain.errors import BadFilter
from fieldbill.workflows.invoices import filters

TODAY = date(2026, 12, 3)
NOT_FILTERS = {"limit", "cursor", "sort"}


def test_the_filter_object_takes_exactly_the_lists_filters():
    listed = set(inspect.signature(routes_invoices.list_invoices).parameters) - NOT_FILTERS
    assert set(filters.FILTER_NAMES) == listed


def test_a_filter_becomes_what_the_store_reads():
    wanted = filters.parse(
        {
            "status": "open",
            "contact_id": "c-1",
            "balance": "gte:80",
            "account_balance": "lt:1000.5",
            "issue_date_from": "2026-10-01",
            "issue_date_to": date(2026, 10, 31),
            "overdue": "true",
            "period": "2026-10",
        },
        TODAY,
    )
    assert (wanted.status, wanted.contact_id, wanted.overdue, wanted.today) == ("open", "c-1", True, TODAY)
    assert wanted.balance is not None and (wanted.balance.operator, wanted.balance.amount) == (
        "gte",
        Decimal(80),
    )
    assert wanted.account_balance is not None and wanted.account_balance.amount == Decimal("1000.5")
    assert (wanted.issue_date_from, wanted.issue_date_to) == (date(2026, 10, 1), date(2026, 10, 31))
    assert wanted.period_key == "2026-10" and wanted.sort == "date"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"stauts": "draft"}, "stauts"),
        ({"limit": "5"}, "limit"),
        ({"status": "drafty"}, "status"),
        ({"balance": "ne:1"}, "balance"),
        ({"total": "gt:abc"}, "total"),
        ({"overdue": "yes"}, "overdue"),
        ({"issue_date_from": "2026-13-01"}, "issue_date_from"),
        ({"due_date_to": 1709539200}, "due_date_to"),
        ({"due_date_from": "2026-10-01T00:00:00"}, "due_date_from"),
        ({"contact_id": "a b"}, "contact_id"),
        ({"issue_date_from": "2026-10-02", "issue_date_to": "2026-10-01"}, "issue_date_to"),
        ({"due_date_from": "2026-10-02", "due_date_to": "2026-10-01"}, "due_date_to"),
    ],
)
def test_a_bad_or_unknown_filter_names_itself_where_it_was_given(values, field):
    with pytest.raises(BadFilter) as raised:
        filters.parse(values, TODAY, where="body", prefix="filter.")
    assert (raised.value.field, raised.value.where) == (f"filter.{field}", "body")
    with pytest.raises(BadFilter) as raised:
        filters.parse(values, TODAY)
    assert (raised.value.field, raised.value.where) == (field, "query")
