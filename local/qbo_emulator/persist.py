"""Durable companies for the emulator (docs/decisions/0004-durable-local-state.md).

With a state file, the emulator writes what each request changed before the request is answered:
the post-image of every entity it touched, the company's counters and preferences, the answers
kept for `requestid` replay, the OAuth state (apps, grants, tokens, codes), the call counters and
the emulated clock. One SQLite transaction (fsync'd) per request that changed something (a read
commits nothing: its call count rides along with the next write); a kill -9
loses at most the requests in flight, and a retried request still finds its `requestid` answer.
Not kept: fault rules, setting overrides, limiter windows and webhook deliveries not yet made
(the product's scheduled pull closes that gap, as it must for Intuit's own lost deliveries).
"""

from __future__ import annotations

import pickle
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from local.durable import StateFile

from .store import Company

if TYPE_CHECKING:
    from .emulator import QboEmulator

# The company's own fields, written whole (small); entities and requestids are written one by one.
_COMPANY_FIELDS = (
    "name",
    "custom_txn_numbers",
    "tz_offset",
    "tombstones",
    "next_id",
    "next_doc_number",
    "singletons",
    "voided",
    "calls",
    "by_status",
    "automated_sales_tax",
    "tax_rates",
)


def _dump(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _load(value: bytes) -> Any:
    return pickle.loads(value)


class Persistence:
    def __init__(self, emulator: QboEmulator, path: Path):
        self.emulator = emulator
        self.file = StateFile(path)
        self._companies: dict[str, int] = {}  # realm -> id() of the Company object last written whole
        self._last: dict[str, bytes] = {}  # last bytes written for the whole-value rows

    # ---- restore ------------------------------------------------------------------------------------
    def restore(self) -> int:
        """Load the stored state into the (new, empty) emulator; returns how many companies."""
        emu = self.emulator
        realms = self.file.load("companies")
        entities = self.file.load_prefix("entity:")
        requestids = self.file.load_prefix("requestid:")
        with emu.store.lock:
            for realm, value in realms.items():
                fields = _load(value)
                company = Company(realm, fields["name"], fields["custom_txn_numbers"], fields["tz_offset"])
                for name in _COMPANY_FIELDS:
                    if name in fields:  # a field added since the state was written keeps its default
                        setattr(company, name, fields[name])
                company.__post_init__()  # entity types added since (CreditMemo) get their maps
                for key, stored in entities.get(f"entity:{realm}", {}).items():
                    entity, id_ = key.split("/", 1)
                    record, mtime = _load(stored)
                    company.entities.setdefault(entity, {})[id_] = record
                    company.mtime[(entity, id_)] = mtime
                for rid, stored in requestids.get(f"requestid:{realm}", {}).items():
                    company.requestids[rid] = _load(stored)
                emu.store.companies[realm] = company
                self._companies[realm] = id(company)
        oauth = self.file.get("oauth", "state")
        if oauth is not None:
            with emu.oauth.lock:
                for name, value in _load(oauth).items():
                    setattr(emu.oauth, name, value)
            self._last["oauth"] = oauth
        counters = self.file.get("counters", "all")
        if counters is not None:
            with emu._counter_lock:
                emu._counters.update({k: Counter(v) for k, v in _load(counters).items()})
            self._last["counters"] = counters
        clock = self.file.get("clock", "now")
        if clock is not None:
            # Emulated time never runs backwards over a restart (tokens, limit windows, CDC stamps).
            behind = float(_load(clock)) - emu.clock.now()
            if behind > 0:
                emu.clock.advance(behind)
        emu.store.track_changes()
        return len(realms)

    # ---- flush --------------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write what changed since the last flush: one durable transaction (or none)."""
        emu = self.emulator
        # Under the store's lock (re-entrant) from the copy to the commit: flushes are serialised
        # and a later change can never be overwritten by an earlier image.
        with emu.store.lock, emu.oauth.lock:
            puts: list[tuple[str, str, bytes]] = []
            deletes: list[tuple[str, str]] = []
            dropped: list[str] = []
            changes = emu.store.take_changes()
            companies = emu.store.companies
            for realm in list(self._companies):
                if realm not in companies:
                    dropped.append(realm)
                    deletes.append(("companies", realm))
                    del self._companies[realm]
            for realm, company in companies.items():
                whole = self._companies.get(realm) != id(company)  # new, or replaced by a reset
                if whole:
                    if realm in self._companies:
                        dropped.append(realm)
                    self._companies[realm] = id(company)
                if whole or realm in changes.companies:
                    fields = {name: getattr(company, name) for name in _COMPANY_FIELDS}
                    puts.append(("companies", realm, _dump(fields)))
                keys = (
                    [(e, i) for e, records in company.entities.items() for i in records]
                    if whole
                    else changes.entities.get(realm, set())
                )
                for entity, id_ in keys:
                    record = company.entities.get(entity, {}).get(id_)
                    if record is None:
                        deletes.append((f"entity:{realm}", f"{entity}/{id_}"))
                    else:
                        image = (record, company.mtime.get((entity, id_), 0.0))
                        puts.append((f"entity:{realm}", f"{entity}/{id_}", _dump(image)))
                rids = company.requestids.keys() if whole else changes.requestids.get(realm, set())
                for rid in rids:
                    if rid in company.requestids:
                        puts.append((f"requestid:{realm}", rid, _dump(company.requestids[rid])))
            oauth = _dump(
                {
                    name: getattr(emu.oauth, name)
                    for name in ("apps", "grants", "access_tokens", "refresh_tokens", "codes")
                }
            )
            if self._last.get("oauth") != oauth:
                puts.append(("oauth", "state", oauth))
                self._last["oauth"] = oauth
            if not puts and not deletes and not dropped:
                return  # a read: no commit (its call counts ride along with the next write)
            with emu._counter_lock:
                counters = _dump({k: dict(v) for k, v in emu._counters.items()})
            puts.append(("counters", "all", counters))
            puts.append(("clock", "now", _dump(emu.clock.now())))
            self.file.write(puts, deletes, drop_namespaces=self._namespaces(dropped))

    @staticmethod
    def _namespaces(realms: list[str]) -> list[str]:
        return [f"{kind}:{realm}" for realm in realms for kind in ("entity", "requestid")]

    def close(self) -> None:
        self.file.close()
