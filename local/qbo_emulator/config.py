"""Layered settings: defaults (QuickBooks' published values) < global overrides < per-realm overrides."""

from __future__ import annotations

import copy
import threading
from typing import Any

DEFAULTS: dict[str, Any] = {
    # limits (per realm; windows are in emulated time)
    "limits_enabled": True,
    "requests_per_minute": 500,
    "concurrent_requests": 10,
    "batch_per_minute": 40,
    "batch_max_items": 30,
    # requestid
    "requestid_max_length": 50,
    "batch_requestid_max_length": 36,
    "requestid_ttl": None,  # emulated seconds a requestid is remembered; None = forever
    # auth
    "require_auth": True,
    "access_token_ttl": 3600,
    "refresh_token_ttl": 100 * 86400,
    # the refresh token's hard lifespan from the consent: five years (Intuit's 2025 policy; the
    # .NET SDK's x_refresh_token_hard_expires_in reports what is left of it)
    "refresh_token_hard_ttl": 157_680_000,
    "auth_code_ttl": 600,
    # query / cdc
    "max_results_limit": 1000,
    "default_max_results": 100,
    "cdc_max_lookback_days": 30,
    "cdc_max_objects": 1000,
    # webhooks
    "webhooks_enabled": True,
    "webhook_delay": 0.2,  # real seconds events are batched before a POST
    # emulated seconds between attempts after a failure: Intuit's schedule (reference §6; its
    # "then every 6 h" tail is not repeated here)
    "webhook_retry_delays": [10, 20, 30, 300, 1200, 7200, 14400, 21600],
    "webhook_max_events": 100,  # events in one delivery (IntuitDeveloper webinar Q&A 2025-02-05)
    "webhook_timeout": 3.0,  # real seconds
    # faults
    "fault_seed": 0,
}


class Settings:
    def __init__(self, **overrides: Any) -> None:
        self._lock = threading.Lock()
        self._global: dict[str, Any] = {}
        self._realm: dict[str, dict[str, Any]] = {}
        self.update(None, overrides)

    def get(self, key: str, realm: str | None = None) -> Any:
        with self._lock:
            if realm is not None and key in self._realm.get(realm, {}):
                return self._realm[realm][key]
            if key in self._global:
                return self._global[key]
            return DEFAULTS[key]

    def update(self, realm: str | None, values: dict[str, Any]) -> None:
        unknown = set(values) - set(DEFAULTS)
        if unknown:
            raise KeyError(f"unknown setting(s): {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        with self._lock:
            target = self._global if realm is None else self._realm.setdefault(realm, {})
            target.update(copy.deepcopy(values))

    def snapshot(self, realm: str | None = None) -> dict[str, Any]:
        return {k: self.get(k, realm) for k in DEFAULTS}

    def reset(self, realm: str | None = None) -> None:
        with self._lock:
            if realm is None:
                self._global.clear()
                self._realm.clear()
            else:
                self._realm.pop(realm, None)
