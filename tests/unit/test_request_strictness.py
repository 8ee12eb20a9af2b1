"""Every request body model refuses lax scalars: a boolean is true or false (never 0, 1 or
"yes"), a whole number is a JSON number (never "30"). The rule is per field (StrictBool,
StrictInt), so a field added with a plain `bool` or `int` would quietly accept them: the fuzzer
found one (PATCH /bill-profiles took skip_zero 0). This test walks every request model."""

from __future__ import annotations

import importlib
import pkgutil
import types
import typing

from pydantic import BaseModel

import fieldbill.api as api_package
from fieldbill.api.responses import Out
from fieldbill.api.schemas import Strict


def _request_models() -> set[type[BaseModel]]:
    """Models the API validates bodies with: every model of fieldbill.api that is not an answer
    (responses.Out, the error shape), and the billing flow's request models the API takes."""
    for info in pkgutil.iter_modules(api_package.__path__):
        importlib.import_module(f"fieldbill.api.{info.name}")
    importlib.import_module("fieldbill.workflows.billing.requests")
    found: set[type[BaseModel]] = set()
    todo = list(BaseModel.__subclasses__())
    while todo:
        model = todo.pop()
        todo.extend(model.__subclasses__())
        module = model.__module__
        answer = issubclass(model, Out) or model.__name__.startswith("Error")
        if not answer and (
            module.startswith("fieldbill.api.") or module == "fieldbill.workflows.billing.requests"
        ):
            found.add(model)
    assert Strict in found
    return found


def _lax(annotation: object, metadata: list[object]) -> str | None:
    """The lax scalar type a field accepts, if any."""
    if any(getattr(m, "strict", False) for m in metadata):
        return None
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        inner, *extra = typing.get_args(annotation)
        return _lax(inner, [*metadata, *extra])
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            lax = _lax(arg, metadata)
            if lax:
                return lax
        return None
    if annotation in (bool, int):
        return annotation.__name__  # type: ignore[union-attr]
    return None


def test_request_models_take_only_strict_booleans_and_whole_numbers():
    models = _request_models()
    assert len(models) > 20  # the walk found the API's request models
    lax = []
    for model in sorted(models, key=lambda m: m.__qualname__):
        model.model_rebuild()
        for name, field in model.model_fields.items():
            kind = _lax(field.annotation, list(field.metadata))
            if kind:
                lax.append(f"{model.__module__}.{model.__qualname__}.{name}: {kind}")
    assert lax == []
