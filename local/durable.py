"""A small durable key-value file for the local stack's state (docs/decisions/0004-durable-local-state.md).

One SQLite file per service (`aws.sqlite` for moto's state, `qbo.sqlite` for the QuickBooks
emulator). Every change a request makes is written as the post-image of what it touched, in one
transaction per request, before the request is answered: `synchronous=FULL` in WAL mode makes
each commit reach the disk (fsync), so a kill -9 (or a power cut) loses at most the requests in
flight. SQLite is in the standard library: nothing to install, one file to delete for a reset.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

from local.template import ROOT

# `make serve` keeps its data here; `make reset` (or `serve --reset`) deletes it.
DEFAULT_DATA_DIR = ROOT / ".local" / "state"


class StateFile:
    """Namespaced keys -> bytes. Writers are serialised; one `write()` is one durable transaction."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # isolation_level=None: explicit BEGIN/COMMIT, so one write() is exactly one transaction.
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS kv (ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,"
            " PRIMARY KEY (ns, key)) WITHOUT ROWID"
        )
        self.writes = 0  # transactions committed (the decision record's overhead figures)

    def write(
        self,
        puts: Iterable[tuple[str, str, bytes]] = (),
        deletes: Iterable[tuple[str, str]] = (),
        drop_namespaces: Iterable[str] = (),
    ) -> None:
        """Drop whole namespaces, then delete keys, then put keys: all or nothing, durably."""
        puts, deletes, drops = list(puts), list(deletes), list(drop_namespaces)
        if not puts and not deletes and not drops:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if drops:
                    self._db.executemany("DELETE FROM kv WHERE ns = ?", [(ns,) for ns in drops])
                if deletes:
                    self._db.executemany("DELETE FROM kv WHERE ns = ? AND key = ?", deletes)
                if puts:
                    self._db.executemany("INSERT OR REPLACE INTO kv (ns, key, value) VALUES (?, ?, ?)", puts)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self.writes += 1

    def put(self, ns: str, key: str, value: bytes) -> None:
        self.write(puts=[(ns, key, value)])

    def get(self, ns: str, key: str) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE ns = ? AND key = ?", (ns, key)).fetchone()
        return None if row is None else bytes(row[0])

    def load(self, ns: str) -> dict[str, bytes]:
        with self._lock:
            rows = self._db.execute("SELECT key, value FROM kv WHERE ns = ?", (ns,)).fetchall()
        return {key: bytes(value) for key, value in rows}

    def load_prefix(self, prefix: str) -> dict[str, dict[str, bytes]]:
        """Every namespace starting with `prefix`: {ns: {key: value}}."""
        with self._lock:
            rows = self._db.execute(
                "SELECT ns, key, value FROM kv WHERE ns >= ? AND ns < ?", (prefix, prefix + "\uffff")
            ).fetchall()
        out: dict[str, dict[str, bytes]] = {}
        for ns, key, value in rows:
            out.setdefault(ns, {})[key] = bytes(value)
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()


def reset(data_dir: Path) -> bool:
    """Delete the stored state (True if there was any)."""
    if not data_dir.exists():
        return False
    shutil.rmtree(data_dir)
    return True
