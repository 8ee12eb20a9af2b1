"""Reading what changed in QuickBooks: change data capture within its window, a full query beyond.

| data type     | QuickBooks entities   | applied here as (workflows/inbound/applier.py)  |
|---------------|-----------------------|-------------------------------------------------|
| customers     | Customer              | Contact (qbo_id, name, email, balance, active)  |
| items         | Item Inventory/NonInv | Product kind inventory / non_inventory          |
| service_types | Item Service          | Product kind service                            |
| invoices      | Invoice, Payment      | our invoices' balance and paid status (backfill) |

Each company keeps one watermark per data type: the QuickBooks server time of the last successful
read, minus an overlap. Within the 30-day window a read asks `GET /cdc?entities=…&changedSince=…`;
on the first read, beyond the window, when CDC refuses the date, or when an answer may have been cut
at its 1000-object cap, it falls back to a full query. This module only reads (no table access).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fieldbill.observability import logger
from fieldbill.quickbooks.client import QboClient, quote
from fieldbill.quickbooks.errors import Permanent

# The catalogue data types: pulled on their schedules, on demand, and after every connect.
DATA_TYPES: tuple[str, ...] = ("customers", "items", "service_types")
# Invoices and payments: the hourly backfill behind their webhooks.
BACKFILL_DATA_TYPES: tuple[str, ...] = ("invoices",)
ENTITIES: dict[str, tuple[str, ...]] = {
    "customers": ("Customer",),
    "items": ("Item",),
    "service_types": ("Item",),
    "invoices": ("Invoice", "Payment"),
}
ITEM_TYPES: dict[str, tuple[str, ...]] = {
    "items": ("Inventory", "NonInventory"),
    "service_types": ("Service",),
}
CDC_SAFE_DAYS = 29  # the window is 30 days by QuickBooks' clock: beyond 29 a full query is used
CDC_MAX_OBJECTS = 1000  # a CDC answer this long may have been cut: re-read everything instead
OVERLAP = timedelta(minutes=5)  # re-read this much before the watermark (applying twice is a no-op)
QUERY_PAGE = 1000


@dataclass
class Changes:
    """What one read brought: rows per entity, how it was read, QuickBooks' time of the read."""

    rows: dict[str, list[dict[str, Any]]]
    mode: str  # cdc | query
    server_time: str


def parse_time(text: str) -> datetime:
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    return datetime.fromisoformat(value)


def watermark(server_time: str) -> str:
    return (parse_time(server_time) - OVERLAP).isoformat(timespec="seconds")


def cdc_fresh(mark: Mapping[str, Any], seconds_per_qbo_minute: float) -> bool:
    """Is the watermark inside the CDC window? Judged by our clock, scaled like QuickBooks' clock."""
    pulled_at = mark.get("pulled_at_epoch")
    if not mark.get("changed_since") or pulled_at is None:
        return False
    qbo_seconds = (time.time() - float(pulled_at)) * 60.0 / float(seconds_per_qbo_minute)
    return qbo_seconds < CDC_SAFE_DAYS * 86400


def cdc(client: QboClient, entities: tuple[str, ...], since: str) -> Changes | None:
    """Changed and deleted records since `since`, or None when CDC cannot answer completely."""
    try:
        answer = client.get("cdc", {"entities": ",".join(entities), "changedSince": since})
    except Permanent as exc:  # changedSince beyond the window (or refused): a full query instead
        logger.info("CDC refused; falling back to a query", extra={"code": exc.code, "entities": entities})
        return None
    rows: dict[str, list[dict[str, Any]]] = {e: [] for e in entities}
    for response in answer.get("CDCResponse", []):
        for part in response.get("QueryResponse", []):
            for entity in entities:
                rows[entity] += [dict(r) for r in part.get(entity, [])]
    if sum(len(r) for r in rows.values()) >= CDC_MAX_OBJECTS:
        return None
    return Changes(rows=rows, mode="cdc", server_time=str(answer.get("time") or ""))


def query_pages(
    client: QboClient, entity: str, where: str | None
) -> Iterator[tuple[list[dict[str, Any]], str]]:
    start = 1
    condition = f" where {where}" if where else ""
    while True:
        text = f"select * from {entity}{condition} startposition {start} maxresults {QUERY_PAGE}"
        answer = client.get("query", {"query": text})
        rows = [dict(r) for r in answer.get("QueryResponse", {}).get(entity, [])]
        yield rows, str(answer.get("time") or "")
        if len(rows) < QUERY_PAGE:
            return
        start += QUERY_PAGE


def full(client: QboClient, data_type: str) -> Changes:
    """Every record of the data type (customers and items: active and inactive; invoices: every
    invoice, whose balances already carry every payment) and the server time of the first read."""
    entity = ENTITIES[data_type][0]
    wheres: list[str | None]
    if entity == "Invoice":
        wheres = [None]
    else:
        types = ITEM_TYPES.get(data_type)
        type_filter = f" AND Type IN ({', '.join(quote(t) for t in types)})" if types else ""
        wheres = [f"Active = {active}{type_filter}" for active in ("true", "false")]
    rows: list[dict[str, Any]] = []
    first_time = ""
    for where in wheres:
        for page, server_time in query_pages(client, entity, where):
            first_time = first_time or server_time
            rows += page
    return Changes(rows={entity: rows}, mode="query", server_time=first_time)


def read_changes(
    client: QboClient, data_type: str, mark: Mapping[str, Any], seconds_per_qbo_minute: float
) -> Changes:
    """What changed since the data type's watermark (CDC when it can answer, else everything)."""
    if data_type not in ENTITIES:
        raise ValueError(f"unknown data type {data_type!r}")
    got = None
    if cdc_fresh(mark, seconds_per_qbo_minute):
        got = cdc(client, ENTITIES[data_type], str(mark["changed_since"]))
    return got or full(client, data_type)
