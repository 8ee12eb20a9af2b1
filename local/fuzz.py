"""make fuzz: schemathesis against the served OpenAPI document of a fresh local stack.

Fixed seed and a time budget (so `make test` stays well under 20 minutes). It fails on any server
error or any answer that does not match the document; the other checks are counted and printed.

    python -m local.fuzz [--seconds 150] [--seed 20261202]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import requests

from local.template import ROOT

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
    "ignored_auth",
]
# These must end at zero failures; the others are reported (their counts go in the closing note).
MUST_PASS = ("not_a_server_error", "response_schema_conformance")
REPORT_DIR = ROOT / ".local" / "fuzz"


def _counts(ndjson: Path) -> tuple[Counter[str], Counter[str]]:
    """(checks run, checks failed) per check name, read from schemathesis' NDJSON event stream."""
    ran: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    seen_failures: set[tuple[str, str]] = set()
    for line in ndjson.read_text().splitlines():
        event = json.loads(line)
        for value in event.values():
            if not isinstance(value, dict):
                continue
            recorder = value.get("recorder") or {}
            for checks in (recorder.get("checks") or {}).values():
                for check in checks:
                    name = check.get("name")
                    ran[name] += 1
                    if check.get("status") == "failure":
                        # One failure, however often shrinking repeats it, counts once.
                        key = (
                            name,
                            json.dumps(check.get("failure_info") or check.get("case", ""), sort_keys=True),
                        )
                        if key not in seen_failures:
                            seen_failures.add(key)
                            failed[name] += 1
    return ran, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.fuzz")
    parser.add_argument("--seconds", type=int, default=150, help="schemathesis' time budget")
    parser.add_argument("--seed", type=int, default=20261202)
    args = parser.parse_args(argv)

    from local.stack import LocalStack, StackOptions

    # Refused requests log one INFO line each: thousands here. Errors (and every 500) still print.
    options = StackOptions(seconds_per_minute=1.0, poll_seconds=1, log_level="ERROR", metrics=False)
    stack = LocalStack(options).start()
    try:
        token = stack.token(f"fuzz-{uuid.uuid4().hex[:8]}")
        REPORT_DIR.mkdir(parents=True, exist_ok=True)
        ndjson = REPORT_DIR / "events.ndjson"
        # The served document, fetched once here: the first request pays the function's cold start,
        # which on a busy machine outlasts schemathesis' schema-loading timeout.
        served = requests.get(f"{stack.api_url}/openapi.json", timeout=300)
        served.raise_for_status()
        schema = REPORT_DIR / "openapi.json"
        schema.write_text(served.text)
        # No crash cache: a run replays nothing from an earlier one (same seed, same cases).
        config = REPORT_DIR / "schemathesis.toml"
        config.write_text("[cache]\nenabled = false\n")
        command = [
            str(Path(sys.executable).parent / "schemathesis"),
            "--config-file",
            str(config),
            "run",
            str(schema),
            "--url",
            stack.api_url,
            "--checks",
            ",".join(CHECKS),
            "--seed",
            str(args.seed),
            "--max-time",
            str(args.seconds),
            "--phases",
            "examples,coverage,fuzzing",
            "--workers",
            "1",
            "--no-shrink",
            "--request-timeout",
            "30",
            "--header",
            f"Authorization: Bearer {token}",
            "--report",
            "ndjson",
            "--report-ndjson-path",
            str(ndjson),
            "--warnings",
            "off",
        ]
        completed = subprocess.run(command, check=False)
        ran, failed = _counts(ndjson)
    finally:
        stack.stop()
    print("\nschemathesis checks (run / failed):")
    for name in CHECKS:
        print(f"  {name:30} {ran[name]:6} / {failed[name]}")
    bad = [name for name in MUST_PASS if failed[name] or not ran[name]]
    if bad:
        print(f"FAILED: {', '.join(bad)} must run and have no failures", file=sys.stderr)
        return 1
    print(f"fuzz: 0 server errors, 0 response-schema failures (schemathesis exit {completed.returncode})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
