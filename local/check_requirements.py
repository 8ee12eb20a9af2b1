"""Fail when layers/shared/python/requirements.txt no longer matches pyproject.toml's runtime dependencies."""

from __future__ import annotations

import re
import sys
import tomllib

from local.template import ROOT


def main() -> int:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    exported = (ROOT / "layers/shared/python/requirements.txt").read_text().lower()
    missing = []
    for requirement in declared:
        name, version = re.split(r"(?:\[[^\]]*\])?==", requirement.lower())
        if f"{name}=={version}" not in exported:
            missing.append(requirement)
    if missing:
        print(f"layers/shared/python/requirements.txt is stale (run `make lock`): {missing}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
