"""Import time of each function's handler module, with and without compiled bytecode.

Each measurement is a fresh interpreter (a cold start imports everything once). "without" points
PYTHONPYCACHEPREFIX at an empty folder and forbids writing, so every module is compiled from
source, as in a `sam build` output that ships no .pyc; "with" reads bytecode compiled beforehand,
as `make build` ships it.

Each handler's figure is also given over a bare `import boto3` measured in the same run, the same
way: boto3 is what every Lambda in Python pays anyway, so the part over it is what this code costs
(issue 11's goal: at most GOAL_OVER_BOTO3_MS for every handler, with bytecode).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile

from local.template import ROOT, Template

PROBE = (
    "import importlib.util, sys, time\n"
    "t = time.perf_counter()\n"
    "spec = importlib.util.spec_from_file_location('app', sys.argv[1])\n"
    "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
    "print((time.perf_counter() - t) * 1000)\n"
)


GOAL_OVER_BOTO3_MS = 120.0
BOTO3_PROBE = "import boto3\n"


def _measure(path: str, env: dict[str, str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", PROBE, path], env=env, capture_output=True, text=True, check=True
        )
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return round(statistics.median(samples), 1)


def measure(runs: int = 3) -> dict[str, dict[str, float]]:
    """Per function: import ms with and without bytecode, and with bytecode over bare boto3."""
    base = {**os.environ, "PYTHONPATH": f"{ROOT / 'layers/shared/python'}:{ROOT}"}
    base.pop("PYTHONDONTWRITEBYTECODE", None)
    results: dict[str, dict[str, float]] = {}
    with (
        tempfile.TemporaryDirectory() as compiled,
        tempfile.TemporaryDirectory() as empty,
        tempfile.TemporaryDirectory() as probe_dir,
    ):
        with_pyc = {**base, "PYTHONPYCACHEPREFIX": compiled}
        without = {**base, "PYTHONPYCACHEPREFIX": empty, "PYTHONDONTWRITEBYTECODE": "1"}
        boto3_probe = os.path.join(probe_dir, "app.py")
        with open(boto3_probe, "w") as handle:
            handle.write(BOTO3_PROBE)
        subprocess.run(
            [sys.executable, "-c", PROBE, boto3_probe], env=with_pyc, capture_output=True, check=True
        )
        boto3_ms = _measure(boto3_probe, with_pyc, runs)
        results["bare_boto3"] = {"with_bytecode_ms": boto3_ms}
        for spec in Template().functions().values():
            path = str(spec.code_dir / "app.py")
            subprocess.run([sys.executable, "-c", PROBE, path], env=with_pyc, capture_output=True, check=True)
            with_ms = _measure(path, with_pyc, runs)
            results[spec.logical_id] = {
                "with_bytecode_ms": with_ms,
                "without_bytecode_ms": _measure(path, without, runs),
                "over_boto3_ms": round(with_ms - boto3_ms, 1),
                "within_goal": float(with_ms - boto3_ms <= GOAL_OVER_BOTO3_MS),
            }
    return results


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
