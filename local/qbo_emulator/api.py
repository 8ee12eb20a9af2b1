"""Accounting API operations on one company, independent of HTTP, auth, limits and faults:
entity CRUD, query, batch and change data capture. Returns (status, JSON payload) or raises QboFault."""

from __future__ import annotations

import contextlib
import copy
from datetime import timedelta
from typing import Any

from . import errors, query
from .clock import Clock, fmt_time, parse_time
from .config import Settings
from .entities import URL_ENTITIES, Accounting
from .jsonutil import loads
from .store import ENTITY_TYPES, SINGLETONS, Company, Store

CANONICAL = {name.lower(): name for name in (*ENTITY_TYPES, *SINGLETONS)}


def canonical_entity(name: str) -> str | None:
    return CANONICAL.get(name.strip().lower())


class CompanyApi:
    def __init__(self, store: Store, accounting: Accounting, settings: Settings, clock: Clock) -> None:
        self.store = store
        self.accounting = accounting
        self.settings = settings
        self.clock = clock

    def now_str(self, c: Company) -> str:
        return fmt_time(self.clock.now(), c.tz_offset, millis=True)

    def with_time(self, c: Company, payload: dict[str, Any]) -> dict[str, Any]:
        payload["time"] = self.now_str(c)
        return payload

    # ---- dispatch ----------------------------------------------------------------------------
    def handle(
        self, c: Company, method: str, rest: str, args: dict[str, str], body: bytes, content_type: str
    ) -> tuple[int, dict[str, Any]]:
        parts = [p for p in rest.strip("/").split("/") if p]
        if not parts:
            raise errors.unsupported("No resource in the request URL.")
        head = parts[0].lower()
        if head == "query":
            text = args.get("query")
            if text is None and method == "POST":
                text = body.decode("utf-8", "replace")
            return 200, self.with_time(c, {"QueryResponse": self.query(c, text or "")})
        if head == "batch" and method == "POST":
            return 200, self.batch(c, self._json(body), args.get("requestid"))
        if head == "cdc" and method == "GET":
            return 200, self.cdc(c, args)
        entity = URL_ENTITIES.get(head)
        if entity is None:
            raise errors.unsupported(f"Resource '{parts[0]}' is not supported by this API.")
        if method == "GET":
            if entity in SINGLETONS:
                return 200, self.with_time(c, self.accounting.read(c, entity, ""))
            if len(parts) != 2:
                raise errors.unsupported(f"GET {rest} is not supported; use GET /{head}/<id> or a query.")
            return 200, self.with_time(c, self.accounting.read(c, entity, parts[1]))
        if method == "POST" and len(parts) == 3 and parts[2].lower() == "send":
            return 200, self.with_time(c, self.accounting.send(c, entity, parts[1], args.get("sendTo")))
        if method == "POST" and len(parts) == 1:
            return 200, self.with_time(c, self.write(c, entity, args, self._json(body)))
        raise errors.unsupported(f"{method} {rest} is not supported.")

    @staticmethod
    def _json(body: bytes) -> Any:
        try:
            return loads(body or b"{}")
        except ValueError as exc:
            raise errors.invalid_property("body", f"Request body is not valid JSON: {exc}") from exc

    def write(self, c: Company, entity: str, args: dict[str, str], body: Any) -> dict[str, Any]:
        operation = (args.get("operation") or "").lower()
        include = (args.get("include") or "").lower()
        if operation == "delete":
            return self.accounting.delete(c, entity, body)
        if operation == "void" or (operation == "update" and "void" in include.split(",")):
            return self.accounting.void(c, entity, body)
        if operation in ("", "create", "update"):
            return self.accounting.save(c, entity, body, args)
        raise errors.unsupported(f"Operation {operation} is not supported.")

    # ---- query -------------------------------------------------------------------------------
    def query(
        self, c: Company, text: str, as_before: dict[str, list[dict[str, Any]]] | None = None
    ) -> dict[str, Any]:
        """`as_before`: records per entity as they were before a batch began (see `batch`)."""
        q = query.parse(text)
        entity = canonical_entity(q.entity)
        if entity is None:
            raise errors.query_invalid(f"Invalid entity name: {q.entity}")
        # query.run only reads the records: evaluate on the stored ones under the lock and copy the
        # page it answers (copying every record first made each query O(company) in deep copies).
        with self.store.lock:
            if as_before is not None and entity in as_before:
                records = as_before[entity]
            else:
                records = [c.singletons[entity]] if entity in SINGLETONS else c.all(entity)
            return copy.deepcopy(
                query.run(
                    q,
                    entity,
                    records,
                    c.tz_offset,
                    default_max=self.settings.get("default_max_results", c.realm_id),
                    max_limit=self.settings.get("max_results_limit", c.realm_id),
                )
            )

    # ---- batch -------------------------------------------------------------------------------
    def batch(self, c: Company, body: Any, request_id: str | None = None) -> dict[str, Any]:
        items = body.get("BatchItemRequest") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            raise errors.required("BatchItemRequest")
        limit = self.settings.get("batch_max_items", c.realm_id)
        if len(items) > limit:
            raise errors.batch_too_large(limit, len(items))
        out = []
        id_max = self.settings.get("requestid_max_length", c.realm_id)
        as_before = self._before_batch(c, items)
        for item in items:
            bid = item.get("bId") if isinstance(item, dict) else None
            try:
                # Each item's request id is the requestid followed by its bId, and it too must stay
                # within 50 characters, else that item fails with 6000 (intuit/QuickBooks-V3-Java-SDK#180)
                if request_id and len(request_id + str(bid or "")) > id_max:
                    combined = request_id + str(bid or "")
                    raise errors.business(
                        f"Business Validation Error: You cannot enter more than {id_max} characters in the "
                        f"request_id field. You tried entering {combined[:10]}..., which is "
                        f"{len(combined)} characters."
                    )
                out.append({"bId": bid, **self._batch_item(c, item, as_before)})
            except errors.QboFault as fault:
                out.append({"bId": bid, "Fault": fault.fault()})
        return self.with_time(c, {"BatchItemResponse": out})

    def _before_batch(self, c: Company, items: list[Any]) -> dict[str, list[dict[str, Any]]] | None:
        """The operations of one batch do not see each other's results (Intuit blog 2017-07-27,
        batch operations; reference §4): its queries read the company as it was before the batch.
        Copies only the entities queried, and only when the batch also writes."""
        texts = [str(i["Query"]) for i in items if isinstance(i, dict) and "Query" in i]
        if not texts or len(texts) == len(items):
            return None
        queried: set[str] = set()
        for text in texts:
            with contextlib.suppress(errors.QboFault):  # a bad query faults in its own item
                entity = canonical_entity(query.parse(text).entity)
                if entity is not None:
                    queried.add(entity)
        with self.store.lock:
            return {e: copy.deepcopy([c.singletons[e]] if e in SINGLETONS else c.all(e)) for e in queried}

    def _batch_item(
        self, c: Company, item: Any, as_before: dict[str, list[dict[str, Any]]] | None = None
    ) -> dict[str, Any]:
        if not isinstance(item, dict) or item.get("bId") in (None, ""):
            raise errors.required("bId")
        if "Query" in item:
            return {"QueryResponse": self.query(c, str(item["Query"]), as_before)}
        keys = [k for k in item if k not in ("bId", "operation", "optionsData") and canonical_entity(k)]
        if len(keys) != 1:
            raise errors.invalid_property(
                "BatchItemRequest", "Each batch item needs exactly one entity or Query"
            )
        entity = canonical_entity(keys[0])
        assert entity is not None
        obj = item[keys[0]]
        operation = (item.get("operation") or "").lower()
        if entity not in URL_ENTITIES.values():
            raise errors.unsupported(f"{entity} is not supported in batch")
        args = {"include": str(item.get("optionsData") or "")}
        if operation == "create":
            if isinstance(obj, dict):
                obj = {k: v for k, v in obj.items() if k != "Id"}
            return self.accounting.save(c, entity, obj, args)
        if operation == "update":
            if not isinstance(obj, dict) or obj.get("Id") in (None, ""):
                raise errors.required("Id")
            return self.accounting.save(c, entity, obj, args)
        if operation == "delete":
            return self.accounting.delete(c, entity, obj)
        if operation == "void":
            return self.accounting.void(c, entity, obj)
        raise errors.invalid_property("operation", f"Batch operation {operation!r} is not supported")

    # ---- change data capture -----------------------------------------------------------------
    def cdc(self, c: Company, args: dict[str, str]) -> dict[str, Any]:
        names = [n for n in (args.get("entities") or "").split(",") if n.strip()]
        if not names:
            raise errors.required("entities")
        since_text = args.get("changedSince")
        if not since_text:
            raise errors.required("changedSince")
        try:
            since = parse_time(since_text, c.tz_offset)
        except ValueError as exc:
            raise errors.invalid_property(
                "changedSince", f"changedSince is not a valid date: {since_text}"
            ) from exc
        now_dt = self.clock.now_dt()
        lookback = self.settings.get("cdc_max_lookback_days", c.realm_id)
        if now_dt - since > timedelta(days=lookback):
            raise errors.invalid_property(
                "changedSince", f"changedSince must be within the last {lookback} days: {since_text}"
            )
        since_ts = since.timestamp()
        remaining = int(self.settings.get("cdc_max_objects", c.realm_id))
        responses: list[dict[str, Any]] = []
        with self.store.lock:
            for raw in names:
                entity = canonical_entity(raw)
                if entity is None or entity in SINGLETONS:
                    raise errors.invalid_property("entities", f"Entity {raw.strip()} is not supported by CDC")
                changed: list[tuple[float, dict[str, Any]]] = [
                    (c.mtime[(entity, r["Id"])], copy.deepcopy(r))
                    for r in c.entities[entity].values()
                    if c.mtime.get((entity, r["Id"]), 0) >= since_ts
                ]
                for id_, ts in c.tombstones[entity].items():
                    if ts >= since_ts:
                        stamp = fmt_time(ts, c.tz_offset)
                        changed.append(
                            (
                                ts,
                                {
                                    "domain": "QBO",
                                    "status": "Deleted",
                                    "Id": id_,
                                    "MetaData": {"LastUpdatedTime": stamp},
                                },
                            )
                        )
                changed.sort(key=lambda pair: pair[0])
                rows = [r for _, r in changed[: max(remaining, 0)]]
                remaining -= len(rows)
                if rows:
                    responses.append({entity: rows, "startPosition": 1, "maxResults": len(rows)})
                else:
                    responses.append({})
        return self.with_time(c, {"CDCResponse": [{"QueryResponse": responses}]})
