"""The inbound flow's state on the connection record: which companies are connected (the schedules
pull each), the pull watermarks per data type, and the last inbound errors the status route shows.

Kept apart from store/qbo_links.py so the scheduled function imports only the models: its cold
start is one query and one send.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fieldbill.clock import now_iso
from fieldbill.store.models import META, Entity, QboConnection

MAX_LAST_ERRORS = 10


def _connection(tenant_id: str) -> QboConnection | None:
    try:
        return QboConnection.get(QboConnection.key(tenant_id), META, consistent_read=True)
    except QboConnection.DoesNotExist:
        return None


def connected_companies() -> list[QboConnection]:
    """Every connected company (the schedules queue one pull for each)."""
    return [c for c in Entity.gsi2.query(QboConnection.connected_key()) if isinstance(c, QboConnection)]


def watermarks(tenant_id: str) -> dict[str, Any]:
    record = _connection(tenant_id)
    return dict(record.watermarks.as_dict()) if record is not None and record.watermarks else {}


def record_pull(tenant_id: str, data_type: str, entry: Mapping[str, Any]) -> None:
    """Only this data type's watermark is written: pulls of other types may run at the same time."""
    record = _connection(tenant_id)
    if record is not None:
        record.update(actions=[QboConnection.watermarks[data_type].set(dict(entry))])  # type: ignore[index]


def record_error(tenant_id: str, source: str, error: BaseException) -> None:
    """Keep the last MAX_LAST_ERRORS inbound errors on the connection (the status route shows them)."""
    record = _connection(tenant_id)
    if record is None:
        return
    entry = {
        "at": now_iso(),
        "source": source,
        "error": type(error).__name__,
        "code": str(getattr(error, "code", "") or ""),
        "message": str(error)[:500],
    }
    kept = [e.as_dict() if hasattr(e, "as_dict") else dict(e) for e in (record.last_errors or [])]
    kept = [*kept, entry][-MAX_LAST_ERRORS:]
    record.update(actions=[QboConnection.last_errors.set(kept)])  # type: ignore[arg-type]
