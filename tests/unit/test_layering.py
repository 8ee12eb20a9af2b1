"""One door to the table, read off the source: what store/ owns nobody else does.

- pynamodb, and boto3's DynamoDB, are used only inside store/;
- a key prefix (`T#`, `#RUN#`, `QBOEVENT#` …) is written only inside store/;
- a status attribute changes only in store/transitions.py (a record is created with its first
  status, which is not a change);
- nothing above store/ catches a pynamodb or botocore error;
- dependencies point inward: domain imports nothing of the package's outer layers.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "shared" / "python" / "fieldbill"
STORE = PACKAGE / "store"
TRANSITIONS = STORE / "transitions.py"
STATUS_ATTRIBUTES = {"status", "sync_status"}
# A key prefix: an upper-case word glued to '#', as the single-table keys are built (T#, #RUN#).
KEY_PREFIX = re.compile(r"(^|#)[A-Z][A-Z0-9_]*#|#[A-Z][A-Z0-9_]*$")


def _modules(outside: Path | None = None) -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if outside is not None and outside in path.parents:
            continue
        yield path, ast.parse(path.read_text(), filename=str(path))


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(PACKAGE)}:{getattr(node, 'lineno', '?')}"


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module:
        return [node.module]
    return []


def test_only_store_imports_pynamodb():
    offenders = [
        _where(path, node)
        for path, tree in _modules(outside=STORE)
        for node in ast.walk(tree)
        for name in _imported(node)
        if name == "pynamodb" or name.startswith("pynamodb.")
    ]
    assert offenders == []


def test_only_store_talks_to_dynamodb_through_boto3():
    offenders = [
        _where(path, node)
        for path, tree in _modules(outside=STORE)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in {"client", "resource"}
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and node.args[0].value == "dynamodb"
    ]
    assert offenders == []


def _strings(tree: ast.Module) -> Iterator[ast.Constant]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node


def _docstrings(tree: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def test_only_store_writes_key_prefixes():
    offenders = []
    for path, tree in _modules(outside=STORE):
        docs = _docstrings(tree)
        for node in _strings(tree):
            if id(node) not in docs and KEY_PREFIX.search(node.value):
                offenders.append(f"{_where(path, node)} {node.value!r}")
    assert offenders == []


def _status_writes(tree: ast.Module) -> Iterator[ast.AST]:
    for node in ast.walk(tree):
        # Model.status.set(...) in an update or a transaction
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "set"
            and isinstance(node.func.value, ast.Attribute)
            and node.func.value.attr in STATUS_ATTRIBUTES
        ):
            yield node
        # record.status = ... on a record that is then saved
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                # `self.status = …` is an exception's or a value object's own field, not a record's
                if (
                    isinstance(target, ast.Attribute)
                    and target.attr in STATUS_ATTRIBUTES
                    and not (isinstance(target.value, ast.Name) and target.value.id == "self")
                ):
                    yield node


def test_status_changes_only_through_the_store_transitions():
    offenders = [
        _where(path, node)
        for path, tree in _modules()
        if path != TRANSITIONS and "domain" not in path.relative_to(PACKAGE).parts
        for node in _status_writes(tree)
    ]
    assert offenders == []


def test_nothing_above_store_catches_storage_errors():
    offenders = []
    for path, tree in _modules(outside=STORE):
        for node in ast.walk(tree):
            for name in _imported(node):
                if name.startswith(("pynamodb.exceptions", "botocore.exceptions")):
                    offenders.append(_where(path, node))
    assert offenders == []


@pytest.mark.parametrize("layer", ["domain"])
def test_domain_imports_no_outer_layer(layer):
    outer = ("fieldbill.store", "fieldbill.quickbooks", "fieldbill.workflows", "fieldbill.api", "boto3")
    offenders = [
        f"{_where(path, node)} {name}"
        for path, tree in _modules()
        if layer in path.relative_to(PACKAGE).parts
        for node in ast.walk(tree)
        for name in _imported(node)
        if name.startswith(outer) or name.startswith("pynamodb")
    ]
    assert offenders == []


def test_only_settings_reads_the_environment():
    """Configuration only through fieldbill.settings: os.environ / os.getenv nowhere else."""
    settings = PACKAGE / "settings"
    offenders = [
        _where(path, node)
        for path, tree in _modules(outside=settings)
        for node in ast.walk(tree)
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
            and node.attr in {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}
        )
        or (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and any(a.name in {"environ", "environb", "getenv", "getenvb"} for a in node.names)
        )
    ]
    assert offenders == []
