"""Runs the project's own Lambda handlers in this process, and routes moto's Lambda invokes to them.

moto (5.2.x, pinned) cannot run Lambda code without Docker: with `use_docker: False` its
`LambdaSimpleBackend.invoke` only echoes the payload. The single patch below replaces that method
so Step Functions `lambda:invoke` tasks (and any boto3 `lambda.invoke`) call the real handler named
in template.yaml. A handler exception is reported the way Lambda does (header
`x-amz-function-error: Unhandled`, body `{"errorType", "errorMessage"}`) so Retry/Catch in the
state machine match on the error type. tests/integration/test_local_runtime.py pins this behaviour,
so a moto upgrade that breaks the patch fails loudly. See docs/decisions/0002-local-runtime.md.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from local.template import FunctionSpec

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that Powertools and our handlers read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str
    log_group_name: str = ""
    log_stream_name: str = ""
    function_version: str = "$LATEST"

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class FunctionRegistry:
    """Function name or ARN -> the project's handler, loaded from CodeUri/Handler like Lambda does."""

    def __init__(self, functions: dict[str, FunctionSpec]):
        self.specs = functions
        self._by_name = {spec.name: spec for spec in functions.values()}
        self._modules: dict[str, ModuleType] = {}
        self._lock = threading.Lock()
        self.invocations: dict[str, int] = {}
        self._count_lock = threading.Lock()

    def spec(self, name_or_arn: str) -> FunctionSpec:
        name = name_or_arn.split(":function:")[-1].split(":")[0]
        if name in self.specs:
            return self.specs[name]
        return self._by_name[name]

    def handler(self, spec: FunctionSpec) -> Handler:
        module_name, func_name = spec.handler.rsplit(".", 1)
        with self._lock:
            module = self._modules.get(spec.logical_id)
            if module is None:
                path = spec.code_dir / f"{module_name.replace('.', '/')}.py"
                # A unique module name per function: every function's module is called app.py.
                unique = f"_fn_{spec.logical_id}_{module_name}"
                loader_spec = importlib.util.spec_from_file_location(unique, path)
                if loader_spec is None or loader_spec.loader is None:
                    raise ImportError(f"cannot load {path}")
                module = importlib.util.module_from_spec(loader_spec)
                sys.modules[unique] = module
                loader_spec.loader.exec_module(module)
                self._modules[spec.logical_id] = module
        return getattr(module, func_name)

    def invoke(self, name_or_arn: str, event: Any) -> Any:
        """Call the handler; exceptions propagate (the caller decides how Lambda would report them)."""
        spec = self.spec(name_or_arn)
        context = LambdaContext(
            function_name=spec.name,
            invoked_function_arn=spec.arn,
            memory_limit_in_mb=512,
            timeout_seconds=spec.timeout,
            aws_request_id=str(uuid.uuid4()),
        )
        with self._count_lock:  # consumers of one mapping invoke from several threads
            self.invocations[spec.logical_id] = self.invocations.get(spec.logical_id, 0) + 1
        return self.handler(spec)(event, context)


_registry: FunctionRegistry | None = None


def _patched_invoke(self, function_name, qualifier, body, headers, response_headers):
    if _registry is None:
        raise RuntimeError("local lambda runtime not installed")
    event = json.loads(body) if body else {}
    try:
        result = _registry.invoke(function_name, event)
    except Exception as exc:  # reported as Lambda reports an unhandled error
        traceback.print_exc()
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}).encode()
    return json.dumps(result, default=str).encode()


def install(registry: FunctionRegistry) -> None:
    """Route moto's Lambda invocations to `registry` (idempotent; the latest registry wins)."""
    global _registry
    from moto.awslambda_simple.models import LambdaSimpleBackend

    _registry = registry
    LambdaSimpleBackend.invoke = _patched_invoke  # type: ignore[method-assign]
