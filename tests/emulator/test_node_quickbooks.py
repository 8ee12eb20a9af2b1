"""node-quickbooks 2.0.50 (npm), a second independent client, against the emulator (issue 15):
create, query, batch, change data capture, void, payment (tests/emulator/node/conformance.js).

Its install is automated (`make test` runs `make node-deps`: node and npm from the Debian package
when missing, then `npm ci` from the committed package.json and package-lock.json). Missing, this
test FAILS saying how to install it: nothing is skipped silently."""

from __future__ import annotations

import json
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

from tests.emulator.conftest import CLIENT_ID

NODE_DIR = Path(__file__).resolve().parent / "node"


def test_node_quickbooks_creates_queries_batches_reads_changes_voids_and_pays(emu, realm):
    node = shutil.which("node")
    assert node, "node is not installed: run `make node-deps` (make test does)"
    assert (NODE_DIR / "node_modules" / "node-quickbooks").is_dir(), "run `make node-deps` (npm ci)"
    token = emu.connect(CLIENT_ID, realm)["access_token"]
    done = subprocess.run(
        [node, "conformance.js", emu.api_base, realm, token],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    # create: QuickBooks numbers the invoice and totals it (2 x 85 + 1.5 x 40)
    assert out["customer"]["SyncToken"] == "0"
    assert (
        Decimal(str(out["invoice"]["TotalAmt"])) == Decimal("230") == Decimal(str(out["invoice"]["Balance"]))
    )
    assert out["invoice"]["DocNumber"] == "1001"
    # query: the customer's invoice is found
    assert out["query"] == [out["invoice"]["Id"]]
    # batch: the items do not see each other; one bad reference faults only its own item
    by_id = {r["bId"]: r for r in out["batch"]}
    assert by_id["nq1"]["created"] and by_id["nq2"]["created"]
    assert by_id["nq3"]["created"] is None and by_id["nq3"]["fault"]
    assert by_id["nq4"]["queried"] is not None
    # payment: the invoice's balance drops by it
    assert Decimal(str(out["payment"]["TotalAmt"])) == 50
    assert Decimal(str(out["after_payment"]["Balance"])) == Decimal("180")
    # void: amounts zeroed, the invoice kept
    assert out["voided"]["Id"] == by_id["nq2"]["created"]
    assert Decimal(str(out["voided"]["TotalAmt"])) == 0 and Decimal(str(out["voided"]["Balance"])) == 0
    # change data capture: what changed in the hour, each kind
    assert out["invoice"]["Id"] in out["cdc"]["Invoice"] and by_id["nq2"]["created"] in out["cdc"]["Invoice"]
    assert out["payment"]["Id"] in out["cdc"]["Payment"]
    assert out["customer"]["Id"] in out["cdc"]["Customer"]
