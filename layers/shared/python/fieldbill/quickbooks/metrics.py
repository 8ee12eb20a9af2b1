"""QuickBooks metrics with a per-realm dimension.

One Lambda batch can touch several realms, and Powertools' shared Metrics object applies its
dimensions to every metric of a flush, so per-realm metrics go out one by one (EMF single_metric).
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from fieldbill.observability import logger
from fieldbill.settings import get_settings

DEFAULT_NAMESPACE = "Fieldbill"


def emit(name: str, unit: MetricUnit, value: float, realm_id: str | None) -> None:
    # single_metric does not honour Powertools' switch; the shared Metrics object does.
    settings = get_settings()
    if settings.metrics_disabled:
        return
    namespace = settings.metrics_namespace or DEFAULT_NAMESPACE
    try:
        with single_metric(name=name, unit=unit, value=value, namespace=namespace) as metric:
            metric.add_dimension(name="realm", value=realm_id or "none")
    except Exception:  # a metric must never fail the work it measures
        logger.exception("metric not emitted", extra={"metric": name})


def count(name: str, realm_id: str | None, value: float = 1) -> None:
    emit(name, MetricUnit.Count, value, realm_id)


def latency_ms(name: str, realm_id: str | None, millis: float) -> None:
    emit(name, MetricUnit.Milliseconds, millis, realm_id)
