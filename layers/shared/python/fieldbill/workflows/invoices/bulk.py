"""One command on many invoices, as an operation (the jobs worker runs it): each invoice is done
or refused on its own (a void invoice in a "mark sent" selection is reported, not fatal), and the
operation's result shows the progress while it runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fieldbill.domain.errors import Conflict, DomainError, InvalidTransition, NotFound, ValidationError
from fieldbill.workflows.invoices import commands

RecordId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
PROGRESS_EVERY = 25
MAX_SELECTION = 500


class BulkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # regenerate: an invoice group's drafts rebuilt from current data (issue 16).
    action: Literal["delete", "mark_sent", "void", "sync", "send", "add_to_group", "regenerate"]
    invoice_ids: list[RecordId] = Field(min_length=1, max_length=MAX_SELECTION)
    reason: str | None = Field(default=None, max_length=500)
    # --- invoice groups (issue 16): the group add_to_group adds to (created first when new).
    group_id: RecordId | None = None
    group_name: str | None = Field(default=None, max_length=200)


def _code(exc: DomainError) -> str:
    if isinstance(exc, NotFound):
        return "not_found"
    if isinstance(exc, InvalidTransition):
        return "invalid_transition"
    if isinstance(exc, ValidationError):
        return "validation_error"
    return "conflict" if isinstance(exc, Conflict) else "refused"


def _one(tenant_id: str, actor: str, request: BulkRequest, invoice_id: str) -> None:
    if request.action == "delete":
        commands.delete(tenant_id, invoice_id, actor, request.reason)
    elif request.action == "mark_sent":
        commands.mark_sent(tenant_id, invoice_id, actor)
    elif request.action == "void":
        commands.void(tenant_id, invoice_id, actor, request.reason)
    elif request.action == "send":
        commands.send(tenant_id, invoice_id, actor)
    elif request.action == "regenerate":
        from fieldbill.workflows.recurring import regenerate  # lazy: only this action needs it

        regenerate.regenerate_draft(tenant_id, invoice_id, actor)
    else:
        commands.sync(tenant_id, invoice_id, actor)


def run(
    tenant_id: str, actor: str, request: BulkRequest, progress: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    if request.action == "add_to_group":
        from fieldbill.workflows.invoice_groups import groups  # lazy: only this action needs it

        return groups.add_selection(
            tenant_id, actor, request.group_id, request.group_name, request.invoice_ids
        )
    done: list[str] = []
    refused: list[dict[str, str]] = []

    def result() -> dict[str, Any]:
        return {
            "action": request.action,
            "total": len(request.invoice_ids),
            "processed": len(done) + len(refused),
            "done": list(done),
            "refused": list(refused),
        }

    for number, invoice_id in enumerate(request.invoice_ids, start=1):
        try:
            _one(tenant_id, actor, request, invoice_id)
        except DomainError as exc:
            refused.append({"invoice_id": invoice_id, "code": _code(exc), "message": str(exc)[:500]})
        else:
            done.append(invoice_id)
        if number % PROGRESS_EVERY == 0 and number < len(request.invoice_ids):
            progress(result())
    return result()
