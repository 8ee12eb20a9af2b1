"""An unexpected exception is logged with the request id, then answered 500 in the shared shape."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from fieldbill.api.responses import ErrorOut
from tests.conftest import Client


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_an_unexpected_error_is_logged_with_the_request_id_and_answered_500(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fieldbill.observability import logger

    # store/work.py binds catalog's functions when first imported: import it before the patch,
    # or a process whose first use of it falls inside this test keeps the broken one for good.
    from fieldbill.store import catalog, work  # noqa: F401

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the table went away")

    monkeypatch.setattr(catalog, "get", broken)
    records = _Records()
    # The package's one Logger (its name is the service name it found when first imported).
    logger._logger.addHandler(records)
    try:
        response = client.get("/contacts/anything")
    finally:
        logger._logger.removeHandler(records)
    assert response.status_code == 500, response.text
    error = ErrorOut.model_validate(response.json()).error
    assert error.code == "internal_error" and "table" not in error.message  # no internals leak
    logged = [r for r in records.records if r.levelno >= logging.ERROR and r.exc_info]
    assert logged, "the exception was not logged"
    assert getattr(logged[0], "request_id", None), "the log line carries no request id"
