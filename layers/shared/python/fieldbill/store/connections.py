"""The QuickBooks connection record (one per tenant): every read and write of it, and its indexes.

Only ciphertext passes through here: KMS and OAuth stay in fieldbill.quickbooks.tokens, which
decides what to write; this module writes it, conditionally, and answers in domain terms.

| access                         | key                                                           |
|--------------------------------|---------------------------------------------------------------|
| a tenant's connection          | pk `T#<tenant>#QBO`, sk `#`                                    |
| the tenant of a company        | gsi1 `REALM#<realm>` (set while connected or needing reconnect) |
| the connected companies        | gsi2 `QBO#CONNECTED`, sk tenant (only while `connected`)        |

Every status change goes through CONNECTION_MACHINE and fieldbill.store.transitions; a refused
condition is a Conflict (or False, where the caller only needs to know it lost a race).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DoesNotExist, UpdateError
from pynamodb.expressions.update import Action

from fieldbill.clock import now_iso
from fieldbill.domain.errors import Conflict
from fieldbill.domain.states import CONNECTION_MACHINE, ConnectionStatus
from fieldbill.store import common, transitions
from fieldbill.store.models import META, Entity, QboConnection

# Connected connections are listed by the schedules through this sparse gsi2 key (set only while
# the status is "connected"; removed on disconnect and needs_reconnect).
CONNECTED_INDEX_KEY = QboConnection.connected_key()


@dataclass(frozen=True)
class NewTokens:
    """A token pair as stored: ciphertexts and the access token's expiry (epoch seconds)."""

    access_token_enc: str
    refresh_token_enc: str
    access_expires_at: int


# ------------------------------------------------------------------------------ reads
def get(tenant_id: str, consistent: bool = True) -> QboConnection | None:
    try:
        record = Entity.get(QboConnection.key(tenant_id), META, consistent_read=consistent)
    except DoesNotExist:
        return None
    return record if isinstance(record, QboConnection) else None


def status(tenant_id: str) -> str:
    """connected | needs_reconnect | disconnected (also when the tenant never connected)."""
    record = get(tenant_id, consistent=False)
    return str(record.status) if record is not None else ConnectionStatus.DISCONNECTED.value


def tenant_for_realm(realm_id: str) -> str | None:
    """The tenant connected to a QuickBooks company (webhooks and pulls name the realm only)."""
    for record in Entity.gsi1.query(QboConnection.realm_key(realm_id)):
        if isinstance(record, QboConnection) and record.status != ConnectionStatus.DISCONNECTED:
            return record.tenant_id
    return None


def connected_companies() -> list[QboConnection]:
    """Every connection whose status is connected (the schedules pull each of them)."""
    return [c for c in Entity.gsi2.query(CONNECTED_INDEX_KEY) if isinstance(c, QboConnection)]


def ensure(tenant_id: str, actor: str) -> QboConnection:
    """The tenant's connection, created `disconnected` on first use (once, even concurrently)."""
    existing = get(tenant_id)
    if existing is not None:
        return existing
    record = QboConnection(
        pk=QboConnection.key(tenant_id),
        sk=META,
        tenant_id=tenant_id,
        id=tenant_id,
        status=ConnectionStatus.DISCONNECTED.value,
    )
    with contextlib.suppress(Conflict):  # created concurrently: read the winner
        common.create(record, actor)
    found = get(tenant_id)
    assert found is not None
    return found


# ------------------------------------------------------------------------------ connect
def save_oauth_state(record: QboConnection, value: str) -> None:
    """The pending connect's state digest (one at a time: a new connect supersedes the last)."""
    record.update(actions=[QboConnection.oauth_state.set(value), QboConnection.updated_at.set(now_iso())])


def connect(
    record: QboConnection,
    *,
    realm_id: str,
    tokens: NewTokens,
    oauth_state: str,
    actor: str,
    reason: str,
    new_company: bool,
) -> None:
    """Store the tokens of a completed consent, consuming the pending state `oauth_state` (single
    use: Conflict when it is gone or changed, i.e. the callback was replayed or superseded).
    Lists the connection by realm and for the schedules. `new_company`: another company than
    before, whose settings and watermarks do not apply."""
    tenant_id = record.tenant_id
    extra: list[Action] = [
        QboConnection.realm_id.set(realm_id),
        QboConnection.access_token_enc.set(tokens.access_token_enc),
        QboConnection.refresh_token_enc.set(tokens.refresh_token_enc),
        QboConnection.access_expires_at.set(tokens.access_expires_at),
        QboConnection.token_version.add(1),
        QboConnection.refresh_lease_until.remove(),
        QboConnection.oauth_state.remove(),
        QboConnection.gsi1pk.set(QboConnection.realm_key(realm_id)),
        QboConnection.gsi1sk.set(QboConnection.key(tenant_id)),
        QboConnection.gsi2pk.set(CONNECTED_INDEX_KEY),
        QboConnection.gsi2sk.set(tenant_id),
    ]
    if new_company:
        extra += [QboConnection.settings.set({}), QboConnection.watermarks.set({})]
    unused = QboConnection.oauth_state == oauth_state
    if record.status != ConnectionStatus.CONNECTED:
        transitions.apply(
            record,
            "status",
            CONNECTION_MACHINE,
            ConnectionStatus.CONNECTED.value,
            actor=actor,
            reason=reason,
            extra=extra,
            condition=unused,
        )
        return
    # Consent again while connected: new tokens, no status change (the history still says so).
    _update(
        record,
        [*extra, _history(record, actor, reason), QboConnection.updated_at.set(now_iso())],
        (QboConnection.status == ConnectionStatus.CONNECTED.value) & unused,
        what="connection changed meanwhile (state used or superseded)",
    )


def set_company_name(tenant_id: str, name: str) -> None:
    record = get(tenant_id)
    if record is not None:
        record.update(actions=[QboConnection.company_name.set(name)])


# ------------------------------------------------------------------------------ token rotation
def take_refresh_lease(record: QboConnection, now: float, until: float) -> bool:
    """True when this worker may refresh: nobody rotated the tokens since `record` was read and
    no other lease is live. The lease is released by the rotation itself or release_lease()."""
    try:
        record.update(
            actions=[QboConnection.refresh_lease_until.set(until)],
            condition=(QboConnection.token_version == record.token_version)
            & (
                QboConnection.refresh_lease_until.does_not_exist()
                | (QboConnection.refresh_lease_until <= now)
            ),
        )
    except UpdateError as exc:
        if common.conditional_failed(exc):
            return False
        raise
    return True


def store_rotated_tokens(record: QboConnection, version: int, tokens: NewTokens) -> bool:
    """Store a refreshed pair as token_version + 1, only if the version is still `version`
    (False: somebody rotated meanwhile, which the lease should make impossible)."""
    try:
        record.update(
            actions=[
                QboConnection.access_token_enc.set(tokens.access_token_enc),
                QboConnection.refresh_token_enc.set(tokens.refresh_token_enc),
                QboConnection.access_expires_at.set(tokens.access_expires_at),
                QboConnection.token_version.set(version + 1),
                QboConnection.refresh_lease_until.remove(),
                QboConnection.updated_at.set(now_iso()),
            ],
            condition=QboConnection.token_version == version,
        )
    except UpdateError as exc:
        if common.conditional_failed(exc):
            return False
        raise
    return True


def release_lease(record: QboConnection) -> None:
    """Give the refresh lease back after a failed refresh (nothing when tokens moved meanwhile)."""
    try:
        record.update(
            actions=[QboConnection.refresh_lease_until.remove()],
            condition=QboConnection.token_version == record.token_version,
        )
    except UpdateError as exc:
        if not common.conditional_failed(exc):
            raise


# ------------------------------------------------------------------------------ status changes
def mark_needs_reconnect(
    record: QboConnection, reason: str, actor: str, *, version: int | None = None
) -> bool:
    """connected -> needs_reconnect, off the schedules' index. With `version`, only while the
    tokens are still those (a refresh refused with a token another worker already replaced says
    nothing about the new one). False when nothing changed: already needing reconnect,
    disconnected, or the tokens moved meanwhile."""
    if not CONNECTION_MACHINE.can(ConnectionStatus(record.status), ConnectionStatus.NEEDS_RECONNECT):
        return False
    try:
        transitions.apply(
            record,
            "status",
            CONNECTION_MACHINE,
            ConnectionStatus.NEEDS_RECONNECT.value,
            actor=actor,
            reason=reason,
            extra=[
                QboConnection.refresh_lease_until.remove(),
                QboConnection.gsi2pk.remove(),
                QboConnection.gsi2sk.remove(),
            ],
            condition=QboConnection.token_version == version if version is not None else None,
        )
    except Conflict:
        return False
    return True


def disconnect(record: QboConnection, actor: str, reason: str) -> None:
    """-> disconnected: the tokens and both index entries go; settings and watermarks stay, so
    connecting the same company again resumes. InvalidTransition/Conflict when not allowed."""
    transitions.apply(
        record,
        "status",
        CONNECTION_MACHINE,
        ConnectionStatus.DISCONNECTED.value,
        actor=actor,
        reason=reason,
        extra=[
            QboConnection.access_token_enc.remove(),
            QboConnection.refresh_token_enc.remove(),
            QboConnection.access_expires_at.remove(),
            QboConnection.refresh_lease_until.remove(),
            QboConnection.token_version.add(1),
            QboConnection.gsi1pk.remove(),
            QboConnection.gsi1sk.remove(),
            QboConnection.gsi2pk.remove(),
            QboConnection.gsi2sk.remove(),
        ],
    )


# ------------------------------------------------------------------------------ settings, marks, errors
def save_settings(record: QboConnection, settings: dict[str, Any], actor: str) -> None:
    """Replace the settings (the caller merged them), with a history entry naming who."""
    record.update(
        actions=[
            QboConnection.settings.set(settings),
            QboConnection.updated_at.set(now_iso()),
            _history(record, actor, "settings changed"),
        ]
    )


def set_watermark(tenant_id: str, data_type: str, entry: dict[str, Any]) -> None:
    """One data type's pull watermark; only that entry is written (other pulls run alongside)."""
    record = get(tenant_id)
    if record is not None:
        record.update(actions=[QboConnection.watermarks[data_type].set(entry)])  # type: ignore[index]


def add_last_error(tenant_id: str, entry: dict[str, Any], keep: int) -> None:
    """Append an inbound error, keeping the last `keep` (shown by the status route)."""
    record = get(tenant_id)
    if record is None:
        return
    kept = [e.as_dict() if hasattr(e, "as_dict") else dict(e) for e in (record.last_errors or [])]
    record.update(actions=[QboConnection.last_errors.set([*kept, entry][-keep:])])  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ helpers
def _history(record: QboConnection, actor: str, reason: str) -> Action:
    """A history entry for a write that keeps the status (settings, renewed consent)."""
    entry = common.history_entry(actor, record.status, record.status, reason)
    return QboConnection.history.set(QboConnection.history.append([entry]))


def _update(record: QboConnection, actions: list[Action], condition: Any, what: str) -> None:
    try:
        record.update(actions=actions, condition=condition)
    except UpdateError as exc:
        if common.conditional_failed(exc):
            raise Conflict(f"quickbooks_connection {record.id!r}: {what}") from None
        raise
