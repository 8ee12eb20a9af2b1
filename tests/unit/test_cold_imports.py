"""What a handler must not load at import (cold start): each is built at first use instead.

A fresh interpreter per handler, in the environment of a deployed function (the Tracer is on
there): the X-Ray SDK (Tracer), intuitlib's client with jwt and cryptography (OAuth calls only)
load in no handler; pydantic loads in no run step but the one that queues messages at first use.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NEVER_AT_IMPORT = ("aws_xray_sdk", "intuitlib.client", "jwt", "cryptography")
RUN_STEPS = ("run_compile", "run_generate", "run_sync", "run_progress", "run_finish", "run_reconcile")
PROBE = (
    "import importlib.util, json, sys\n"
    "spec = importlib.util.spec_from_file_location('app', sys.argv[1])\n"
    "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
    "print(json.dumps(sorted(sys.modules)))\n"
)


def _loaded(function: str) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POWERTOOLS_TRACE")}
    env |= {
        "PYTHONPATH": f"{ROOT / 'layers/shared/python'}:{ROOT}",
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / function),
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_DEFAULT_REGION": "us-east-1",
        "TABLE_NAME": "cold-imports",
    }
    path = ROOT / "functions" / function / "app.py"
    out = subprocess.run([sys.executable, "-c", PROBE, str(path)], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    return set(json.loads(out.stdout.splitlines()[-1]))


@pytest.mark.parametrize("function", sorted(p.name for p in (ROOT / "functions").iterdir() if p.is_dir()))
def test_handler_import_leaves_heavy_modules_for_first_use(function: str) -> None:
    loaded = _loaded(function)
    assert [m for m in NEVER_AT_IMPORT if m in loaded] == []
    if function in RUN_STEPS:
        assert "pydantic" not in loaded


# --- issue 11 (handler cold import): a handler loads only what its own flow calls.
# Only these two call QuickBooks on every message; every other handler records or queues its work,
# so requests (with charset_normalizer, idna, http.cookiejar) is not theirs to load.
QUICKBOOKS_CALLERS = ("qbo_sync", "inbound")
# Powertools' OpenAPI models (~40 pydantic models rebuilt at import) only build the document.
OPENAPI_MODELS = "aws_lambda_powertools.event_handler.openapi.models"


@pytest.mark.parametrize("function", sorted(p.name for p in (ROOT / "functions").iterdir() if p.is_dir()))
def test_only_the_quickbooks_callers_load_the_http_client(function: str) -> None:
    loaded = _loaded(function)
    if function not in QUICKBOOKS_CALLERS:
        assert "requests" not in loaded
    assert OPENAPI_MODELS not in loaded


# The jobs worker loads a kind's own module with the first message of that kind (its compile and
# generate, the common kinds, load at import).
JOBS_KIND_MODULES = (
    "fieldbill.workflows.invoices.bulk",
    "fieldbill.workflows.recurring.drafts",
    "fieldbill.workflows.services.billing",
)


def test_jobs_worker_loads_a_kinds_module_with_its_first_message() -> None:
    loaded = _loaded("jobs")
    assert [m for m in JOBS_KIND_MODULES if m in loaded] == []
