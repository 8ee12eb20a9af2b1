"""One command on many invoices, as an operation (the jobs worker runs it): each invoice is done
or refused on its own (a void invoice in a "mark sent" selection is reported, not fatal), and the
operation's result shows the progress while it runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fieldbill.domain.errors import Conflict, DomainError, InvalidTransition, NotFound, ValidationError
from fieldbill.mail.errors import MailError
from fieldbill.workflows.invoices import commands, filters

RecordId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
PROGRESS_EVERY = 25
MAX_SELECTION = 500
# A bulk command on a filter reads its matches this many at a time (wt-life), between commands.
FILTER_PAGE = 100


class BulkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # print: one PDF of the selection; add_to_group; regenerate: an invoice group's drafts rebuilt
    # from current data (issue 16).
    action: Literal["delete", "mark_sent", "void", "sync", "send", "print", "add_to_group", "regenerate"]
    # A selection, or (wt-life) a filter of GET /invoices, as checked by workflows/invoices/filters:
    # exactly one of them (the API sees to it).
    invoice_ids: Annotated[list[RecordId], Field(min_length=1, max_length=MAX_SELECTION)] | None = None
    filter: dict[str, Any] | None = None
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
    if request.filter is not None and request.action in ("add_to_group", "print"):
        # One document, one group: the filter's matches are resolved first (at most a selection's).
        request = request.model_copy(update={"invoice_ids": _at_most_a_selection(tenant_id, request)})
    if request.action == "add_to_group":
        from fieldbill.workflows.invoice_groups import groups  # lazy: only this action needs it

        return groups.add_selection(
            tenant_id, actor, request.group_id, request.group_name, request.invoice_ids or []
        )
    done: list[str] = []
    refused: list[dict[str, str]] = []
    selected = request.invoice_ids or []
    matched = 0

    def result() -> dict[str, Any]:
        return {
            "action": request.action,
            # a filter's total is what it matched so far; the whole of it once the operation ends
            "total": len(selected) if request.filter is None else matched,
            "processed": len(done) + len(refused),
            "done": list(done),
            "refused": list(refused),
        }

    if request.action == "print":
        return _print(tenant_id, request, progress)
    for number, invoice_id in enumerate(_targets(tenant_id, request), start=1):
        matched = number
        try:
            _one(tenant_id, actor, request, invoice_id)
        except DomainError as exc:
            refused.append({"invoice_id": invoice_id, "code": _code(exc), "message": str(exc)[:500]})
        except MailError as exc:  # one email SES refuses or cannot take now stops nothing else
            refused.append({"invoice_id": invoice_id, "code": "mail_error", "message": str(exc)[:500]})
        else:
            done.append(invoice_id)
        if number % PROGRESS_EVERY == 0 and (request.filter is not None or number < len(selected)):
            progress(result())
    return result()


# ---------------------------------------------------------------------------- on a filter (wt-life)
def _targets(tenant_id: str, request: BulkRequest) -> Iterator[str]:
    """The selection, or the filter's matches read a page at a time as the commands go (each page
    read after the previous one is done: an invoice the command changed is behind the cursor)."""
    if request.filter is None:
        yield from request.invoice_ids or []
        return
    from fieldbill.clock import today
    from fieldbill.store import invoices as invoice_store

    # Checked by the API with this same parser; checked again, as the filter is read now.
    wanted = filters.parse(request.filter, today(), where="body", prefix="filter.")
    cursor: str | None = None
    while True:
        page = invoice_store.find_listed(tenant_id, wanted, FILTER_PAGE, cursor)
        for record in page.records:
            yield str(record.id)
        cursor = page.next_cursor
        if cursor is None:
            return


def _at_most_a_selection(tenant_id: str, request: BulkRequest) -> list[str]:
    ids = list(islice(_targets(tenant_id, request), MAX_SELECTION + 1))
    if len(ids) > MAX_SELECTION:
        raise ValidationError("filter", f"matches more than {MAX_SELECTION} invoices: narrow it")
    return ids


def _print(
    tenant_id: str, request: BulkRequest, progress: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """One PDF of the printable invoices of the selection, in its order, behind a presigned link;
    an unknown or deleted invoice is reported and left out, not fatal (wt-credit)."""
    from fieldbill.workflows.documents import prints  # lazy: the layout library is cold start

    selected = request.invoice_ids or []
    printable, refused = prints.printable(tenant_id, selected)
    result: dict[str, Any] = {
        "action": request.action,
        "total": len(selected),
        "processed": len(refused),
        "done": [],
        "refused": refused,
    }
    progress(result)  # checked: the layout of the rest is the long part
    if printable:
        printed = prints.print_invoices(tenant_id, printable)
        result["document"] = {
            "url": printed.url,
            "expires_at": printed.expires_at.isoformat().replace("+00:00", "Z"),
            "invoice_count": printed.invoice_count,
            "size_bytes": printed.size_bytes,
        }
        result["done"] = list(printable)
        result["processed"] = len(selected)
    return result
