"""What a web client may ask of the billing flow: bounded, so no request outgrows a record.

Models are built at first use (`defer_build`): the run steps import this module but never validate.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from fieldbill.domain import model as dm

# Ids as the API accepts them (api/schemas.Id); an item id is its entry's id plus a line kind.
RecordId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
ItemId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]


class RunRequest(BaseModel):
    """What a web client asks for when it starts a billing run."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    grouping: dm.GroupingMode = dm.GroupingMode.PER_CONTACT
    contact_ids: list[RecordId] | None = Field(default=None, min_length=1, max_length=500)
    date_from: date | None = None
    date_to: date | None = None
    sync: StrictBool = True
    issue_date: date | None = None

    @field_validator("date_to")
    @classmethod
    def _range(cls, value: date | None, info: Any) -> date | None:
        start = info.data.get("date_from")
        if value and start and value < start:
            raise ValueError("date_to must not be before date_from")
        return value


class CompileRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    contact_ids: list[RecordId] | None = Field(default=None, min_length=1, max_length=500)
    date_from: date | None = None
    date_to: date | None = None


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    item_ids: list[ItemId] = Field(min_length=1, max_length=5000)
    grouping: dm.GroupingMode = dm.GroupingMode.PER_CONTACT
    # None: QuickBooks when the company is connected to it, else local (destination.resolve).
    destination: dm.Destination | None = None
    # QuickBooks invoices are queued at once; false keeps them as drafts until POST /invoices/{id}/sync.
    sync: StrictBool = True
    issue_date: date | None = None
