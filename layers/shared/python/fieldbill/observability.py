"""One Logger, Tracer and Metrics for the whole package; names come from template Globals.

The Tracer is created at first use, never at import: it imports and patches the X-Ray SDK
(100 ms and more of cold start). `capture_lambda_handler` traces a handler the way
`tracer.capture_lambda_handler` does but builds the Tracer at the handler's first invocation, so
a handler module imports without the SDK; run steps, webhook and schedules never load it (Lambda's
active tracing still records their invocations).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

    tracer: Tracer

logger = Logger()
metrics = Metrics()

Handler = Callable[[Any, Any], Any]


def __getattr__(name: str) -> Any:
    if name == "tracer":
        return _tracer()
    raise AttributeError(name)


def _tracer() -> Tracer:
    if "tracer" not in globals():
        # Deferred: Tracer() imports the X-Ray SDK; only code that traces should pay for it.
        from aws_lambda_powertools import Tracer

        globals()["tracer"] = Tracer()
    return globals()["tracer"]  # type: ignore[no-any-return]


def capture_lambda_handler(handler: Handler) -> Handler:
    """`tracer.capture_lambda_handler(capture_response=False)`, with the Tracer built at the first call."""
    traced: Handler | None = None

    @wraps(handler)
    def wrapper(event: Any, context: Any) -> Any:
        nonlocal traced
        if traced is None:
            traced = _tracer().capture_lambda_handler(handler, capture_response=False)
        return traced(event, context)

    return wrapper
