"""Import time of each function's handler module, with and without compiled bytecode.

Each measurement is a fresh interpreter (a cold start imports everything once). "without" points
PYTHONPYCACHEPREFIX at an empty folder and forbids writing, so every module is compiled from
source, as in a `sam build` output that ships no .pyc; "with" reads bytecode compiled beforehand,
as `make build` ships it.

Each handler's figure is also given over a bare `import boto3` measured in the same run, the same
way: boto3 is what every Lambda in Python pays anyway, so the part over it is what this code costs
(issue 11's goal: at most GOAL_OVER_BOTO3_MS for every handler, with bytecode).

Two clocks: wall time, and the CPU time of the importing process. An import is CPU work (the
files are in the page cache), so on an idle machine the two agree; on a machine shared with other
work the wall figure also counts the time spent waiting for a core, which can be several times the
import itself, so the goal is judged on the CPU figure and both are kept.

The probes see the environment a deployed function sees (template Globals, LAMBDA_TASK_ROOT), so
Powertools behaves as in Lambda (the Tracer, for one, is on there). Rounds interleave bare boto3
and every handler, and each figure is the median over the rounds: on a shared machine a burst of
load then lands on all of them alike instead of on one handler.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from local.template import ROOT, Template

PROBE = (
    "import importlib.util, sys, time\n"
    "t, c = time.perf_counter(), time.process_time()\n"
    "spec = importlib.util.spec_from_file_location('app', sys.argv[1])\n"
    "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
    "print((time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000, len(sys.modules))\n"
)

GOAL_OVER_BOTO3_MS = 120.0
BOTO3_PROBE = "import boto3\n"
BOTO3 = "bare_boto3"
# What template Globals and the Lambda runtime set; values are placeholders (nothing is called).
LAMBDA_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "TABLE_NAME": "fieldbill-bench",
    "POWERTOOLS_SERVICE_NAME": "fieldbill",
    "POWERTOOLS_METRICS_NAMESPACE": "Fieldbill",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}
# Local switches that a deployed function does not have: they would make Powertools skip work.
LOCAL_ONLY = ("POWERTOOLS_TRACE_DISABLED", "POWERTOOLS_METRICS_DISABLED", "PYTHONDONTWRITEBYTECODE")


def _environment(pycache: str, compiled: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LOCAL_ONLY and not k.startswith("AWS_SAM")}
    env.update(LAMBDA_ENV)
    env["PYTHONPATH"] = f"{ROOT / 'layers/shared/python'}:{ROOT}"
    env["PYTHONPYCACHEPREFIX"] = pycache
    if not compiled:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _once(path: str, env: dict[str, str], name: str) -> tuple[float, float, int]:
    env = {**env, "LAMBDA_TASK_ROOT": str(Path(path).parent), "AWS_LAMBDA_FUNCTION_NAME": name}
    out = subprocess.run([sys.executable, "-c", PROBE, path], env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"importing {path} failed:\n{out.stderr[-2000:]}")
    wall, cpu, modules = out.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu), int(modules)


def _medians(
    probes: dict[str, str], env: dict[str, str], runs: int, names: Iterable[str] | None = None
) -> dict[str, tuple[float, float, int]]:
    """Median (wall ms, CPU ms) per probe over `runs` rounds, each round every probe once, and
    the number of modules it loaded (the same every round)."""
    chosen = list(names or probes)
    samples: dict[str, list[tuple[float, float, int]]] = {name: [] for name in chosen}
    for _ in range(runs):
        for name in chosen:
            samples[name].append(_once(probes[name], env, name))
    return {
        name: (
            round(statistics.median(v[0] for v in values), 1),
            round(statistics.median(v[1] for v in values), 1),
            values[-1][2],
        )
        for name, values in samples.items()
    }


def measure(runs: int = 5, runs_without: int = 1) -> dict[str, dict[str, float]]:
    """Per function: import ms with and without bytecode, and with bytecode over bare boto3.

    Without bytecode is one round by default: it is the slow case (seconds), kept for comparison."""
    results: dict[str, dict[str, float]] = {}
    with (
        tempfile.TemporaryDirectory() as compiled,
        tempfile.TemporaryDirectory() as empty,
        tempfile.TemporaryDirectory() as probe_dir,
    ):
        boto3_probe = os.path.join(probe_dir, "app.py")
        Path(boto3_probe).write_text(BOTO3_PROBE)
        probes = {BOTO3: boto3_probe}
        probes.update(
            {spec.logical_id: str(spec.code_dir / "app.py") for spec in Template().functions().values()}
        )
        with_pyc = _environment(compiled, compiled=True)
        _medians(probes, with_pyc, 1)  # writes the bytecode the measured rounds read
        with_ms = _medians(probes, with_pyc, runs)
        handlers = [name for name in probes if name != BOTO3]
        without_ms = _medians(probes, _environment(empty, compiled=False), runs_without, handlers)
    boto3_wall, boto3_cpu, boto3_modules = with_ms[BOTO3]
    results[BOTO3] = {
        "with_bytecode_ms": boto3_wall,
        "with_bytecode_cpu_ms": boto3_cpu,
        "modules": boto3_modules,
    }
    for name in handlers:
        wall, cpu, modules = with_ms[name]
        over_cpu = round(cpu - boto3_cpu, 1)
        results[name] = {
            "with_bytecode_ms": wall,
            "with_bytecode_cpu_ms": cpu,
            "without_bytecode_ms": without_ms[name][0],
            "over_boto3_ms": round(wall - boto3_wall, 1),
            "over_boto3_cpu_ms": over_cpu,
            # Independent of the machine's load: what the handler imports that boto3 does not.
            "modules_over_boto3": float(modules - boto3_modules),
            "within_goal": float(over_cpu <= GOAL_OVER_BOTO3_MS),
        }
    return results


def table(results: dict[str, Any]) -> str:
    """The figures as a few readable lines for the console (the JSON file keeps them all)."""
    boto3 = results[BOTO3]
    lines = [
        f"handler import with bytecode (median of rounds): bare boto3"
        f" {boto3['with_bytecode_cpu_ms']:.0f} ms CPU"
        f" ({boto3['with_bytecode_ms']:.0f} ms wall); goal <= {GOAL_OVER_BOTO3_MS:.0f} ms CPU over it",
        f"  {'function':<24} {'CPU over boto3':>15} {'wall over boto3':>16} {'modules over':>13}"
        f" {'no .pyc, wall':>14}",
    ]
    for name, row in results.items():
        if name == BOTO3:
            continue
        mark = "ok" if row["within_goal"] else "OVER"
        lines.append(
            f"  {name:<24} {row['over_boto3_cpu_ms']:>13.0f}ms {row['over_boto3_ms']:>14.0f}ms"
            f" {row['modules_over_boto3']:>13.0f} {row['without_bytecode_ms']:>12.0f}ms  {mark}"
        )
    return "\n".join(lines)


# --- issue 11: before / after in the same rounds (python -m local.importtime --against REV)
def compare(rev: str, runs: int = 5) -> dict[str, dict[str, float]]:
    """Each handler's import over bare boto3 from `rev` (its layers/ and functions/, by git archive)
    and from this tree, measured in the same rounds (bare boto3, then every handler from both
    trees), so a burst of load lands on both alike; medians of `runs` rounds, with bytecode."""
    with (
        tempfile.TemporaryDirectory() as old_root,
        tempfile.TemporaryDirectory() as pyc_old,
        tempfile.TemporaryDirectory() as pyc_new,
        tempfile.TemporaryDirectory() as probe_dir,
    ):
        tree = subprocess.run(
            ["git", "-C", str(ROOT), "archive", rev, "layers", "functions"], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", old_root], input=tree, check=True)
        old_env = _environment(pyc_old, compiled=True)
        old_env["PYTHONPATH"] = f"{Path(old_root) / 'layers/shared/python'}:{old_root}"
        envs = {"before": old_env, "after": _environment(pyc_new, compiled=True)}
        boto3_probe = os.path.join(probe_dir, "app.py")
        Path(boto3_probe).write_text(BOTO3_PROBE)
        probes: list[tuple[str, str, str]] = []
        for spec in Template().functions().values():
            relative = spec.code_dir.relative_to(ROOT) / "app.py"
            probes.append((spec.logical_id, "before", str(Path(old_root) / relative)))
            probes.append((spec.logical_id, "after", str(ROOT / relative)))
        for name, side, path in probes:  # writes the bytecode the measured rounds read
            _once(path, envs[side], name)
        samples: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
        for _ in range(runs):
            samples.setdefault((BOTO3, "after"), []).append(_once(boto3_probe, envs["after"], BOTO3))
            for name, side, path in probes:
                samples.setdefault((name, side), []).append(_once(path, envs[side], name))
    median = {
        key: (statistics.median(v[0] for v in values), statistics.median(v[1] for v in values), values[-1][2])
        for key, values in samples.items()
    }
    boto3_wall, boto3_cpu, boto3_modules = median[(BOTO3, "after")]
    results: dict[str, dict[str, float]] = {
        BOTO3: {"wall_ms": round(boto3_wall, 1), "cpu_ms": round(boto3_cpu, 1), "modules": boto3_modules}
    }
    for name in dict.fromkeys(name for name, _side, _path in probes):
        (bw, bc, bm), (aw, ac, am) = median[(name, "before")], median[(name, "after")]
        results[name] = {
            "cpu_over_boto3_before": round(bc - boto3_cpu, 1),
            "cpu_over_boto3_after": round(ac - boto3_cpu, 1),
            "wall_over_boto3_before": round(bw - boto3_wall, 1),
            "wall_over_boto3_after": round(aw - boto3_wall, 1),
            "modules_over_boto3_before": bm - boto3_modules,
            "modules_over_boto3_after": am - boto3_modules,
        }
    return results


def compare_table(rev: str, results: dict[str, Any]) -> str:
    boto3 = results[BOTO3]
    lines = [
        f"handler import over bare boto3 ({boto3['cpu_ms']:.0f} ms CPU), {rev} -> this tree, same rounds",
        f"  {'function':<24} {'CPU before':>10} {'after':>6} {'wall before':>12} {'after':>6}"
        f" {'modules before':>15} {'after':>6}",
    ]
    for name, row in results.items():
        if name == BOTO3:
            continue
        lines.append(
            f"  {name:<24} {row['cpu_over_boto3_before']:>10.0f} {row['cpu_over_boto3_after']:>6.0f}"
            f" {row['wall_over_boto3_before']:>12.0f} {row['wall_over_boto3_after']:>6.0f}"
            f" {row['modules_over_boto3_before']:>15.0f} {row['modules_over_boto3_after']:>6.0f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--against":
        compared = compare(sys.argv[2])
        print(compare_table(sys.argv[2], compared), file=sys.stderr)
        print(json.dumps(compared, indent=2))
        sys.exit(0)
    figures = measure()
    print(table(figures), file=sys.stderr)
    print(json.dumps(figures, indent=2))
