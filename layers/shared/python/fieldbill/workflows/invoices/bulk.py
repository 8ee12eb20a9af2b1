"""One command on many invoices, as an operation (the jobs worker runs it): each invoice is done
or refused on its own (a void invoice in a "mark sent" selection is reported, not fatal), and the
operation's result shows the progress while it runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain, islice
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
    # --- An invoice group's action works on the group's invoices (all, unpaid or drafts),
    # read by the worker when it runs: a group holds more invoices than a selection.
    group_members: Literal["all", "unpaid", "drafts"] | None = None


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
    tenant_id: str,
    actor: str,
    request: BulkRequest,
    progress: Callable[[dict[str, Any]], None],
    resume: Resume | None = None,
) -> dict[str, Any]:
    """`resume`: the message is a redelivery (the worker crashed): what the operation recorded
    stays as recorded and is not done again; a command this operation already applied (after its
    last record) is done, not refused (wt-life2)."""
    if request.filter is not None and request.action in ("add_to_group", "print"):
        # One document, one group: the filter's matches are resolved first (at most a selection's).
        request = request.model_copy(update={"invoice_ids": _at_most_a_selection(tenant_id, request)})
    if request.group_members is not None and request.group_id:
        from fieldbill.workflows.invoice_groups import groups  # lazy: only a group's action needs it

        members = groups.selection(tenant_id, request.group_id, request.group_members)
        request = request.model_copy(update={"invoice_ids": members})
    if request.action == "add_to_group":
        from fieldbill.workflows.invoice_groups import groups  # lazy: only this action needs it

        return groups.add_selection(
            tenant_id, actor, request.group_id, request.group_name, request.invoice_ids or []
        )
    earlier = resume.result if resume is not None else {}
    done: list[str] = [str(i) for i in earlier.get("done") or []]
    refused: list[dict[str, str]] = [dict(r) for r in earlier.get("refused") or []]
    seen = set(done) | {r["invoice_id"] for r in refused}
    selected = list(dict.fromkeys(request.invoice_ids or []))  # an invoice listed twice is done once
    in_hand: list[str] = []

    def result(running: bool = True) -> dict[str, Any]:
        partial: dict[str, Any] = {
            "action": request.action,
            # a filter's total is what it matched so far; the whole of it once the operation ends
            "total": len(selected) if request.filter is None else len(seen),
            "processed": len(done) + len(refused),
            "done": list(done),
            "refused": list(refused),
        }
        if running and request.filter is not None:
            # the page being worked on: a redelivery finds them even once they match no more
            partial["in_hand"] = list(in_hand)
        return partial

    if request.action == "print":
        return _print(tenant_id, request, progress)
    pages = _pages(tenant_id, request)
    if resume is not None and earlier.get("in_hand"):
        pages = chain([[str(i) for i in earlier["in_hand"]]], pages)
    for page in pages:
        fresh = [i for i in page if i not in seen]
        if request.filter is not None and fresh:
            in_hand = fresh
            progress(result())  # recorded before any of them is touched
        for invoice_id in fresh:
            if invoice_id in seen:  # listed twice in the selection, or on two pages
                continue
            seen.add(invoice_id)
            try:
                if resume is None or not _applied_by_this_operation(
                    tenant_id, actor, request.action, invoice_id, resume.since
                ):
                    _one(tenant_id, actor, request, invoice_id)
            except DomainError as exc:
                refused.append({"invoice_id": invoice_id, "code": _code(exc), "message": str(exc)[:500]})
            except MailError as exc:  # one email SES refuses or cannot take now stops nothing else
                refused.append({"invoice_id": invoice_id, "code": "mail_error", "message": str(exc)[:500]})
            else:
                done.append(invoice_id)
            number = len(done) + len(refused)
            if number % PROGRESS_EVERY == 0 and (request.filter is not None or number < len(selected)):
                progress(result())
    return result(running=False)


# ---------------------------------------------------------------------------- resuming (wt-life2)
@dataclass(frozen=True, slots=True)
class Resume:
    """A redelivered operation: its last recorded result and when it was created."""

    result: dict[str, Any]
    since: str


# What each command leaves in the invoice's history (store/invoices): a status it moves to, or,
# for a send, the reason "sent (...)" / "sent again (...)". Sync and regenerate are safe to repeat.
_LEAVES_STATUS = {"delete": "deleted", "void": "void"}
_LEAVES_SENT = ("mark_sent", "send")


def _applied_by_this_operation(tenant_id: str, actor: str, action: str, invoice_id: str, since: str) -> bool:
    """The operation's actor made this command's change on the invoice since the operation began:
    done by this operation before the crash, after its last recorded progress."""
    if action not in _LEAVES_STATUS and action not in _LEAVES_SENT:
        return False
    from fieldbill.store import invoices as invoice_store

    try:
        changes = invoice_store.changes_by(tenant_id, invoice_id, actor, since)
    except NotFound:
        return False
    if action in _LEAVES_STATUS:
        return any(c.to_status == _LEAVES_STATUS[action] for c in changes)
    return any((c.reason or "").startswith("sent") for c in changes)


# ---------------------------------------------------------------------------- on a filter (wt-life)
def _pages(tenant_id: str, request: BulkRequest) -> Iterator[list[str]]:
    """The selection (one page), or the filter's matches read a page at a time as the commands go
    (each page read after the previous one is done: an invoice the command changed is behind the
    cursor)."""
    if request.filter is None:
        yield list(request.invoice_ids or [])
        return
    from fieldbill.clock import today
    from fieldbill.store import invoices as invoice_store

    # Checked by the API with this same parser; checked again, as the filter is read now.
    wanted = filters.parse(request.filter, today(), where="body", prefix="filter.")
    cursor: str | None = None
    while True:
        page = invoice_store.find_listed(tenant_id, wanted, FILTER_PAGE, cursor)
        yield [str(record.id) for record in page.records]
        cursor = page.next_cursor
        if cursor is None:
            return


def _targets(tenant_id: str, request: BulkRequest) -> Iterator[str]:
    for page in _pages(tenant_id, request):
        yield from page


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
