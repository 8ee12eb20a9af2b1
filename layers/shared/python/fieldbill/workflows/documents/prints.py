"""Print many: one PDF for a selection of invoices, kept in S3, answered as a presigned link.

The object's key is a digest of the tenant, the invoices in order and each one's version and
last change: a retried print of the same selection writes the same object (or finds it and
skips the layout), so a retry never leaves a second document behind. The bucket's lifecycle rule
deletes prints after a few days (template.yaml, DocumentsBucket).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from fieldbill.observability import logger
from fieldbill.settings import get_settings
from fieldbill.workflows.documents import views

if TYPE_CHECKING:  # records come from store/ functions; the classes only type them
    from fieldbill.store.models import Invoice


MAX_INVOICES = 500
PREFIX = "prints/"


@dataclass(frozen=True)
class Printed:
    url: str
    expires_at: datetime
    invoice_count: int
    size_bytes: int


def object_key(tenant_id: str, records: Sequence[Invoice]) -> str:
    digest = hashlib.sha256(tenant_id.encode())
    for record in records:
        digest.update(f"\n{record.id}|{record.version}|{record.updated_at}".encode())
    return f"{PREFIX}{digest.hexdigest()}.pdf"


@lru_cache(maxsize=1)
def _s3() -> Any:
    return boto3.client("s3")


@lru_cache(maxsize=1)
def _signer() -> Any:
    endpoint = get_settings().documents_link_endpoint
    if not endpoint:
        return boto3.client("s3", config=Config(signature_version="s3v4"))
    # A local endpoint serves /<bucket>/<key>: path-style addressing.
    return boto3.client(
        "s3", endpoint_url=endpoint, config=Config(signature_version="s3v4", s3={"addressing_style": "path"})
    )


def clear_cache() -> None:
    """Forget the clients (a new container would: the local runtime starts stacks anew)."""
    _s3.cache_clear()
    _signer.cache_clear()


def _exists(bucket: str, key: str) -> int | None:
    """The size of the print if it is there (a list, not a HEAD: no storage error to catch)."""
    listed = _s3().list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
    for found in listed.get("Contents", []):
        if found["Key"] == key:
            return int(found["Size"])
    return None


def print_invoices(tenant_id: str, invoice_ids: Sequence[str]) -> Printed:
    settings = get_settings()
    bucket = settings.documents_bucket
    selected = views.many(tenant_id, invoice_ids)
    key = object_key(tenant_id, [record for record, _ in selected])
    size = _exists(bucket, key)
    if size is None:
        from fieldbill.documents import invoice_pdf  # lazy: the layout library is seconds of cold start

        pdf = invoice_pdf.render_many([doc for _, doc in selected])
        _s3().put_object(
            Bucket=bucket,
            Key=key,
            Body=pdf,
            ContentType="application/pdf",
            ServerSideEncryption="AES256",
            Metadata={"invoices": str(len(selected))},
        )
        size = len(pdf)
    seconds = settings.documents_link_seconds
    expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=seconds)
    url = _signer().generate_presigned_url(
        "get_object",
        Params={
            "Bucket": bucket,
            "Key": key,
            "ResponseContentType": "application/pdf",
            "ResponseContentDisposition": f'inline; filename="invoices-{len(selected)}.pdf"',
        },
        ExpiresIn=seconds,
    )
    logger.info("invoices printed", extra={"tenant_id": tenant_id, "invoices": len(selected), "bytes": size})
    return Printed(url=url, expires_at=expires_at, invoice_count=len(selected), size_bytes=size)


def printable(tenant_id: str, invoice_ids: Sequence[str]) -> tuple[list[str], list[dict[str, str]]]:
    """The invoices of a selection that can be printed (in its order), and why each other one is
    not: unknown, or deleted (a bulk print reports them instead of failing; wt-credit)."""
    from fieldbill.store import billing as billing_store

    records = billing_store.invoices_by_id(tenant_id, invoice_ids)
    ok: list[str] = []
    refused: list[dict[str, str]] = []
    for invoice_id in invoice_ids:
        record = records.get(invoice_id)
        if record is None:
            refused.append({"invoice_id": invoice_id, "code": "not_found", "message": "no such invoice"})
        elif record.status == "deleted":
            refused.append(
                {
                    "invoice_id": invoice_id,
                    "code": "invalid_transition",
                    "message": "a deleted invoice is not printed",
                }
            )
        else:
            ok.append(invoice_id)
    return ok, refused
