"""One door to the table, read off the source: what store/ owns nobody else does.

- pynamodb, and boto3's DynamoDB, are used only inside store/;
- a key prefix (`T#`, `#RUN#`, `QBOEVENT#` …) is written only inside store/;
- a status attribute changes only in store/transitions.py (a record is created with its first
  status, which is not a change);
- nothing above store/ catches a pynamodb or botocore error;
- above store/ (api/, workflows/) a model class only types records: no `Model.attribute` (keys,
  conditions, queries) and no runtime import, but for the commented allow-lists;
- configuration only through settings/: nothing else reads os.environ;
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
STATUS_ATTRIBUTES = {"status", "sync_status", "delivery_status"}
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


ABOVE_STORE = ("api", "workflows")
MODELS = "fieldbill.store.models"
# What the API may still do itself with a model class: nothing (the invoice routes moved to
# api/routes_invoices.py on store functions). An entry would name why and who removes it.
MODEL_IMPORTS_ALLOWED: set[tuple[str, str]] = set()
MODEL_ATTRIBUTES_ALLOWED: set[tuple[str, str]] = set()


def _above_store() -> Iterator[tuple[str, ast.Module]]:
    for path, tree in _modules():
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in ABOVE_STORE:
            yield str(relative), tree


def _type_checking_blocks(tree: ast.Module) -> set[int]:
    """ids of the nodes inside `if TYPE_CHECKING:` (imports there only type annotations)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.body:
                inside |= {id(n) for n in ast.walk(child)}
    return inside


def _model_names(tree: ast.Module) -> set[str]:
    return {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == MODELS
        for alias in node.names
    }


def test_api_and_workflows_use_store_models_for_typing_only():
    """Records come from store/ functions: above store/, a model class only types them."""
    offenders = []
    for relative, tree in _above_store():
        typing_only = _type_checking_blocks(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and any(a.name == MODELS for a in node.names):
                offenders.append(f"{relative}:{node.lineno} import {MODELS}")
            if isinstance(node, ast.ImportFrom) and node.module == MODELS and id(node) not in typing_only:
                offenders += [
                    f"{relative}:{node.lineno} {alias.name}"
                    for alias in node.names
                    if (relative, alias.name) not in MODEL_IMPORTS_ALLOWED
                ]
    assert offenders == []


def test_api_and_workflows_build_no_key_or_condition_on_a_model():
    """No `Model.attribute` above store/: keys, conditions, filters and queries are built in store/."""
    offenders = []
    for relative, tree in _above_store():
        names = _model_names(tree)
        for node in ast.walk(tree):
            owner = node.value if isinstance(node, ast.Attribute) else None
            if isinstance(owner, ast.Name) and owner.id in names:
                used = f"{owner.id}.{node.attr}"  # node is the Attribute whose owner is a model
                if (relative, used) not in MODEL_ATTRIBUTES_ALLOWED:
                    offenders.append(f"{relative}:{node.lineno} {used}")
    assert offenders == []
