"""One Logger, Tracer and Metrics for the whole package; names come from template Globals.

The Tracer is created when a module first imports it: it loads and patches the X-Ray SDK, about
a hundred milliseconds of cold start that handlers without it (run steps, webhook, schedules) do
not pay. Lambda's active tracing still records their invocations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

    tracer: Tracer

logger = Logger()
metrics = Metrics()


def __getattr__(name: str) -> Any:
    if name == "tracer":
        from aws_lambda_powertools import Tracer

        globals()["tracer"] = Tracer()
        return globals()["tracer"]
    raise AttributeError(name)
