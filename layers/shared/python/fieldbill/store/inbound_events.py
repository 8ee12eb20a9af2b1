"""Marks of QuickBooks events: each event is applied once, and marked applied only once it is.

A delivery claims its event with a lease (a conditional put): the claim names the state
`applying` and expires at `ttl`. The mark becomes `applied` (kept a week: Intuit retries a
delivery for about a day) only after the event was applied. A worker that crashes or times out
mid-apply leaves a claim that expires on its own: the redelivery finds it expired and applies the
event. DynamoDB's TTL also removes abandoned claims, so the lease and the expiry are one attribute.
"""

from __future__ import annotations

import time
from typing import Literal

from pynamodb.exceptions import DeleteError, PutError, UpdateError

from fieldbill.clock import now_iso
from fieldbill.observability import logger
from fieldbill.store import common
from fieldbill.store.models import META, Entity, InboundEvent

# Longer than the inbound function's 60 s timeout, so a claim is never taken over while its apply
# may still run; shorter than the queue's 360 s visibility timeout, so the redelivery of a crashed
# apply finds the claim expired.
LEASE_SECONDS = 120
APPLIED_TTL_SECONDS = 7 * 24 * 3600
APPLYING, APPLIED = "applying", "applied"

Claim = Literal["claimed", "applied", "busy"]


def key(event_id: str) -> str:
    return InboundEvent.key(event_id)


def claim(event_id: str, realm_id: str | None, tenant_id: str | None) -> Claim:
    """`claimed`: apply it now; `applied`: done before, drop it; `busy`: another worker holds a
    live claim (its delivery comes back later)."""
    now = time.time()
    mark = InboundEvent(
        pk=key(event_id),
        sk=META,
        tenant_id=tenant_id or "-",
        id=event_id,
        realm_id=realm_id,
        state=APPLYING,
        created_at=now_iso(),
        ttl=int(now) + LEASE_SECONDS,
    )
    free = Entity.pk.does_not_exist() | ((InboundEvent.state == APPLYING) & (Entity.ttl < now))
    try:
        mark.save(condition=free)
    except PutError as exc:
        if not common.conditional_failed(exc):
            raise
        held = common.find(InboundEvent, key(event_id))
        return "applied" if held is not None and held.state == APPLIED else "busy"
    return "claimed"


def mark_applied(event_id: str) -> None:
    """After the event was applied: later deliveries are dropped for a week."""
    mark = InboundEvent(pk=key(event_id), sk=META, tenant_id="-", id=event_id)
    try:
        mark.update(
            actions=[InboundEvent.state.set(APPLIED), Entity.ttl.set(int(time.time()) + APPLIED_TTL_SECONDS)],
            condition=Entity.pk.exists(),
        )
    except UpdateError as exc:
        if not common.conditional_failed(exc):
            raise
        # The claim expired and vanished while this apply ran: the event is applied all the same.
        logger.warning("inbound event claim gone before it was marked applied", extra={"event_id": event_id})


def release(event_id: str) -> None:
    """The event was not applied (it waits, or failed): its next delivery claims it at once."""
    mark = InboundEvent(pk=key(event_id), sk=META, tenant_id="-", id=event_id)
    try:
        mark.delete(condition=InboundEvent.state == APPLYING)
    except DeleteError:  # already applied by another delivery, or gone: nothing to release
        logger.info("inbound event claim not released", extra={"event_id": event_id})


def applied(event_id: str) -> bool:
    held = common.find(InboundEvent, key(event_id))
    return held is not None and held.state == APPLIED


def expires_at(event_id: str) -> int | None:
    held = common.find(InboundEvent, key(event_id))
    return None if held is None or held.ttl is None else int(held.ttl)
