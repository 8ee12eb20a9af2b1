"""python -m local demo | serve | reset | token | openapi"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path


def _quiet() -> None:
    # Handlers log JSON lines through Powertools; the demo prints its own summary instead.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run one billing run on the embedded local stack")
    demo.add_argument("--customers", type=int, default=24)
    demo.add_argument(
        "--seconds-per-minute",
        type=float,
        default=2.0,
        help="real seconds per QuickBooks minute (60 = real time)",
    )
    serve = sub.add_parser("serve", help="keep the local HTTP API and the QuickBooks emulator running")
    serve.add_argument("--port", type=int, default=int(os.environ.get("API_PORT", "3000")))
    serve.add_argument("--qbo-port", type=int, default=int(os.environ.get("QBO_PORT", "3001")))
    serve.add_argument("--tenant", default="demo")
    serve.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the local AWS state and the emulator's companies are kept (default .local/state)",
    )
    serve.add_argument("--reset", action="store_true", help="delete the stored state first: start empty")
    serve.add_argument(
        "--outbox",
        type=Path,
        default=None,
        help="the Maildir every email sent through SES lands in (default: outbox/ beside the data dir)",
    )
    reset = sub.add_parser("reset", help="delete the state `serve` keeps: the next serve starts empty")
    reset.add_argument("--data-dir", type=Path, default=None)
    token = sub.add_parser("token", help="mint a local JWT for a tenant")
    token.add_argument("--tenant", default="demo")
    token.add_argument("--subject", default="user-1")
    sub.add_parser("openapi", help="print the OpenAPI document generated from the code")
    args = parser.parse_args(argv)

    if args.command == "token":
        from local.auth import DevIssuer

        print(DevIssuer().mint(args.tenant, subject=args.subject))
        return 0
    if args.command == "reset":
        from local.durable import DEFAULT_DATA_DIR, reset

        data_dir = args.data_dir or DEFAULT_DATA_DIR
        print(f"Data: {data_dir} {'deleted' if reset(data_dir) else 'was already empty'}", flush=True)
        return 0
    if args.command == "openapi":
        os.environ.setdefault("TABLE_NAME", "openapi")
        from fieldbill.api.app import openapi_document

        print(json.dumps(openapi_document(), indent=2))
        return 0
    _quiet()
    if args.command == "demo":
        from local.demo import run_demo

        # A fresh store per demo: its exit status says every invoice of *this* run reached QuickBooks
        # exactly once, which only an empty company can show (docs/decisions/0004-durable-local-state.md).
        print(
            "Data: in memory, fresh for each demo (nothing is kept; `make serve` keeps its data)", flush=True
        )
        return run_demo(customers=args.customers, seconds_per_minute=args.seconds_per_minute)
    return _serve(args)


def _serve(args: argparse.Namespace) -> int:
    from local.durable import DEFAULT_DATA_DIR, reset
    from local.stack import LocalStack, StackOptions

    data_dir = (args.data_dir or DEFAULT_DATA_DIR).resolve()
    # .local/outbox for the default .local/state: sent mail is kept apart from the state a reset deletes.
    outbox = (args.outbox or data_dir.parent / "outbox").resolve()
    if args.reset:
        reset(data_dir)
    stack = LocalStack(
        StackOptions(
            gateway_port=args.port, emulator_port=args.qbo_port, data_dir=data_dir, outbox_dir=outbox
        )
    ).start()
    endpoints = stack.write_endpoints(args.tenant)
    for key, value in endpoints.items():
        print(f"{key}={value}", flush=True)
    found = stack.restored
    print(
        f"Data: {data_dir} (kept across restarts; `make reset` or --reset starts empty). Restored "
        f"{found.get('items', 0)} items, {found.get('messages', 0)} queued messages, "
        f"{found.get('companies', 0)} QuickBooks companies; runs in flight: "
        f"{found.get('runs_resumed', 0)} resumed, {found.get('runs_unresumable', 0)} failed.",
        flush=True,
    )
    print(
        f"Outbox: {stack.outbox} (a Maildir: every email sent through SES, one .eml each in new/); "
        f"list: curl {stack.outbox_url}, one raw message: curl {stack.outbox_url}/<id>",
        flush=True,
    )
    print(
        "Endpoints written to .local/endpoints.json. Fire a schedule: curl -X POST "
        f"{stack.api_url}/__local/schedules/CustomersSync (InventorySync, ServiceTypesSync). Ctrl-C stops.",
        flush=True,
    )
    stopped = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    stopped.wait()
    stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
