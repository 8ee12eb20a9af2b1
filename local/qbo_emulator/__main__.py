"""Run the emulator standalone: ``python -m local.qbo_emulator --port 8089 --time-scale 1``.

Apps and companies can be created with ``--app client_id:secret:redirect_uri`` / ``--company REALM`` or
later through the /__admin API.
"""

from __future__ import annotations

import argparse
import signal
import threading

from .emulator import QboEmulator


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m local.qbo_emulator")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--no-limits", action="store_true", help="disable throttling")
    parser.add_argument("--app", action="append", default=[], help="client_id:secret:redirect_uri")
    parser.add_argument("--company", action="append", default=[], help="realm id to create")
    args = parser.parse_args()
    emu = QboEmulator(port=args.port, time_scale=args.time_scale, limits_enabled=not args.no_limits)
    for spec in args.app:
        client_id, secret, redirect = spec.split(":", 2)
        emu.register_app(client_id, secret, [redirect])
    for realm in args.company:
        emu.create_company(realm)
    emu.start()
    print(f"QuickBooks emulator on {emu.url} (discovery {emu.discovery_url}, API {emu.api_base})", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    emu.stop()


if __name__ == "__main__":
    main()
