"""A job invoice in accounting: approve (fully distributed to GL accounts), export (to QuickBooks
through the sync engine, or as a CSV / IIF file in the DocumentsBucket behind a presigned link),
post (locked from then on), and the journal of posted invoices."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from fieldbill.domain import job_accounting as acc
from fieldbill.domain.errors import ValidationError
from fieldbill.domain.states import WorkflowStatus
from fieldbill.observability import logger
from fieldbill.settings import get_settings
from fieldbill.store import invoices as invoice_store
from fieldbill.store import jobs as store
from fieldbill.workflows.job_billing import invoices as job_invoices

if TYPE_CHECKING:  # records come from store/ functions; the classes only type them
    from fieldbill.store.models import Invoice

EXPORT_PREFIX = "exports/"
MAX_EXPORT = 100


def approve(tenant_id: str, invoice_id: str, entries: Sequence[acc.Entry] | None, actor: str) -> Invoice:
    """invoiced -> approved, only fully distributed (debits = credits, receivables = total). With
    no distribution given, the default one of the tenant's accounts is used."""
    record = invoice_store.get(tenant_id, invoice_id)
    settings = store.settings(tenant_id)
    chosen = (
        list(entries)
        if entries is not None
        else acc.default_distribution(store.line_views(record), settings, store.tax_of(record))
    )
    acc.check_distribution(chosen, record.total, settings)
    return store.advance(
        record, WorkflowStatus.APPROVED, actor, integration=settings.accounting_integration,
        reason="approved: distributed to GL accounts", distribution=chosen,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Exported:
    invoices: list[Invoice]
    url: str | None
    expires_at: datetime | None


def export(tenant_id: str, invoice_ids: Sequence[str], target: str, actor: str) -> Exported:
    """approved -> exported, every selected invoice (each checked before any is written)."""
    if len(invoice_ids) > MAX_EXPORT:
        raise ValidationError("invoice_ids", f"at most {MAX_EXPORT} a request")
    settings = store.settings(tenant_id)
    records = [invoice_store.get(tenant_id, i) for i in invoice_ids]
    for record in records:
        # Decide every step first: one invoice in the wrong status refuses the whole export.
        if record.workflow_status is None:
            raise ValidationError("invoice_ids", f"invoice {record.id} is not a job invoice")
        from fieldbill.domain.states import accounting_step

        accounting_step(
            WorkflowStatus(record.workflow_status),
            WorkflowStatus.EXPORTED,
            integration=settings.accounting_integration,
        )
    url: str | None = None
    expires: datetime | None = None
    if target == "quickbooks":
        for record in records:
            job_invoices.to_quickbooks(record, actor, strict=True)
        ref = "quickbooks"
    else:
        body = _file(tenant_id, records, target)
        ref, url, expires = _store_file(tenant_id, records, target, body)
    done = [
        store.advance(
            r,
            WorkflowStatus.EXPORTED,
            actor,
            integration=settings.accounting_integration,
            export_ref=ref,
            reason=f"exported: {target}",
        )
        for r in records
    ]
    return Exported(done, url, expires)


def _file(tenant_id: str, records: Sequence[Invoice], target: str) -> str:
    views = [
        acc.ExportInvoice(
            id=r.id,
            number=r.number,
            issue_date=date.fromisoformat(r.issue_date),
            customer=r.contact_id,
            job_id=r.job_id or "",
            invoice_type=r.invoice_type or "",
            total=r.total,
            entries=store.entries_of(r),
        )
        for r in records
    ]
    return acc.to_iif(views) if target == "iif" else acc.to_csv(views)


def _store_file(
    tenant_id: str, records: Sequence[Invoice], target: str, body: str
) -> tuple[str, str, datetime]:
    """Like a print: the key digests the selection (a retry writes the same object), a presigned
    link answers it (workflows/documents/prints.py's clients and bucket)."""
    from fieldbill.workflows.documents import prints  # lazy: boto3's S3 client only when a file is asked

    settings = get_settings()
    digest = hashlib.sha256(tenant_id.encode())
    for record in records:
        digest.update(f"\n{record.id}|{record.version}|{record.updated_at}".encode())
    key = f"{EXPORT_PREFIX}{digest.hexdigest()}.{target}"
    content_type = "text/csv" if target == "csv" else "text/plain"
    prints._s3().put_object(
        Bucket=settings.documents_bucket, Key=key, Body=body.encode(), ContentType=content_type,
        ServerSideEncryption="AES256",
    )  # fmt: skip
    seconds = settings.documents_link_seconds
    url = prints._signer().generate_presigned_url(
        "get_object",
        Params={
            "Bucket": settings.documents_bucket,
            "Key": key,
            "ResponseContentType": content_type,
            "ResponseContentDisposition": f'attachment; filename="job-invoices.{target}"',
        },
        ExpiresIn=seconds,
    )
    logger.info(
        "job invoices exported", extra={"tenant_id": tenant_id, "invoices": len(records), "format": target}
    )
    return key, url, datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=seconds)


def post(tenant_id: str, invoice_id: str, actor: str) -> Invoice:
    """-> posted (locked). Its distribution is kept for the journal (the default one when the
    tenant has no accounting integration, where nobody approved it)."""
    record = invoice_store.get(tenant_id, invoice_id)
    settings = store.settings(tenant_id)
    if not settings.accounting_integration and record.job_id:
        # The credit memo of a negative correction that waited for its invoice's sync goes now.
        job_invoices.settle_correction(record, actor, strict=True)
    distribution = None
    if not record.distribution:
        distribution = acc.default_distribution(store.line_views(record), settings, store.tax_of(record))
    return store.advance(
        record, WorkflowStatus.POSTED, actor, integration=settings.accounting_integration,
        reason="posted", distribution=distribution,
    )  # fmt: skip


def journal(
    tenant_id: str, posted_from: date | None, posted_to: date | None, filters: Mapping[str, str | None]
) -> tuple[acc.Journal, list[Invoice]]:
    records = store.posted_in(tenant_id, posted_from, posted_to, filters)
    views = [
        acc.JournalInvoice(
            id=r.id,
            invoice_type=r.invoice_type or "",
            total=r.total,
            lines=store.line_views(r),
            entries=store.entries_of(r),
        )
        for r in records
    ]
    return acc.journal(views), records
