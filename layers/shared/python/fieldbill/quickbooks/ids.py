"""Deterministic QuickBooks requestids: pure, so a flow that only records or queues a send (the API,
the jobs worker) names its requestid without loading the HTTP client (requests, urllib3)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

REQUEST_ID_MAX = 50
BATCH_REQUEST_ID_MAX = 36
BATCH_ID_MAX = 10


def request_id(*parts: object, length: int = 32) -> str:
    """A deterministic requestid: the same operation always sends the same id (≤ 50 characters)."""
    if length > REQUEST_ID_MAX:
        raise ValueError("a requestid has at most 50 characters")
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return digest[:length]


def batch_request_id(operation_ids: Sequence[str]) -> str:
    """One id for a batch, derived from its operations (≤ 36 characters)."""
    return request_id("batch", *sorted(operation_ids), length=32)


def batch_item_id(operation_id: str) -> str:
    return request_id("bid", operation_id, length=BATCH_ID_MAX)
