"""Fault injection rules, per realm or global, with a seeded random source for reproducible runs.

A rule is a dict::

    {"kind": "status", "status": 503, "count": 2, "match": {"method": "POST", "path_regex": "/invoice"}}
    {"kind": "drop_connection", "rate": 0.1}
    {"kind": "lost_after_commit", "count": 1, "match": {"path_regex": "/invoice$"}}
    {"kind": "expire_tokens", "count": 1}
    {"kind": "invalid_grant", "count": 1}
    {"kind": "slow", "delay_ms": 300}

``count`` fires the rule for the first N matching requests; ``rate`` fires it with that probability;
neither fires it on every match. Without ``match.path_regex`` a rule matches Accounting API calls
(``/v3/...``) only; with one it is searched in any path (token endpoint included). ``invalid_grant``
applies to refresh-token requests of the realm's grants.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass
from typing import Any

KINDS = {"status", "drop_connection", "lost_after_commit", "expire_tokens", "invalid_grant", "slow"}


@dataclass
class FaultRule:
    kind: str
    status: int = 500
    count: int | None = None
    rate: float | None = None
    method: str | None = None
    path_regex: re.Pattern[str] | None = None
    delay_ms: int = 0
    body: str | None = None
    content_type: str | None = None
    retry_after: int | None = None
    fired: int = 0

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> FaultRule:
        kind = spec.get("kind")
        if kind not in KINDS:
            raise ValueError(f"fault kind must be one of {sorted(KINDS)}, got {kind!r}")
        match = spec.get("match") or {}
        unknown = set(spec) - {"kind", "status", "count", "rate", "match", "delay_ms", "body"}
        unknown -= {"content_type", "retry_after"}
        if unknown:
            raise ValueError(f"unknown fault rule key(s): {sorted(unknown)}")
        regex = match.get("path_regex")
        return cls(
            kind=kind,
            status=int(spec.get("status", 500)),
            count=None if spec.get("count") is None else int(spec["count"]),
            rate=None if spec.get("rate") is None else float(spec["rate"]),
            method=(match.get("method") or "").upper() or None,
            path_regex=re.compile(regex) if regex else None,
            delay_ms=int(spec.get("delay_ms", 0)),
            body=spec.get("body"),
            content_type=spec.get("content_type"),
            retry_after=spec.get("retry_after"),
        )

    def to_dict(self) -> dict[str, Any]:
        match: dict[str, Any] = {}
        if self.method:
            match["method"] = self.method
        if self.path_regex:
            match["path_regex"] = self.path_regex.pattern
        return {
            "kind": self.kind,
            "status": self.status,
            "count": self.count,
            "rate": self.rate,
            "match": match,
            "delay_ms": self.delay_ms,
            "fired": self.fired,
        }

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method != method.upper():
            return False
        if self.path_regex is None:
            return path.startswith("/v3/") or self.kind == "invalid_grant"
        return self.path_regex.search(path) is not None


class FaultInjector:
    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rules: dict[str | None, list[FaultRule]] = {}
        self._rng = random.Random(seed)

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._rng = random.Random(seed)

    def set_rules(self, realm: str | None, specs: list[dict[str, Any]]) -> None:
        rules = [FaultRule.from_dict(s) for s in specs]
        with self._lock:
            self._rules[realm] = rules

    def add_rule(self, realm: str | None, spec: dict[str, Any]) -> None:
        rule = FaultRule.from_dict(spec)
        with self._lock:
            self._rules.setdefault(realm, []).append(rule)

    def clear(self, realm: str | None = None, everything: bool = False) -> None:
        with self._lock:
            if everything:
                self._rules.clear()
            else:
                self._rules.pop(realm, None)

    def rules(self, realm: str | None) -> list[dict[str, Any]]:
        with self._lock:
            return [r.to_dict() for r in self._rules.get(realm, [])]

    def fire(self, realm: str, method: str, path: str, kinds: set[str]) -> list[FaultRule]:
        """Rules of the given kinds that fire for this request, at most one per kind, realm rules first
        (counts are consumed only by rules that fire)."""
        fired: list[FaultRule] = []
        with self._lock:
            for rule in self._rules.get(realm, []) + self._rules.get(None, []):
                if rule.kind not in kinds or any(f.kind == rule.kind for f in fired):
                    continue
                if not rule.matches(method, path):
                    continue
                if rule.count is not None and rule.fired >= rule.count:
                    continue
                if rule.rate is not None and self._rng.random() >= rule.rate:
                    continue
                rule.fired += 1
                fired.append(rule)
        return fired
