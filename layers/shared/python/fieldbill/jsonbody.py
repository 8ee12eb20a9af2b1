"""The one gate every JSON request body passes (API routes and webhooks): size, UTF-8, depth, parse.

Checked before any parser recurses, so no client input can reach a RecursionError or a
UnicodeDecodeError. Numbers with a fraction or exponent parse to Decimal: money never passes
through float.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

MAX_BYTES = 1_048_576  # 1 MiB: far above any real request, far below Lambda's 6 MB payload
MAX_DEPTH = 32


class BodyRejected(Exception):
    """A body refused before parsing; `status` is the HTTP answer (400 or 413)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def nesting_depth(text: str) -> int:
    """The deepest bracket nesting outside strings, found without recursion."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def decode(raw: bytes | str, *, max_bytes: int = MAX_BYTES) -> str:
    """The body as text: at most `max_bytes` (413) and valid UTF-8 (400)."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if len(data) > max_bytes:
        raise BodyRejected(413, "body_too_large", f"the body is larger than {max_bytes} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyRejected(400, "malformed_body", f"the body is not valid UTF-8 (byte {exc.start})") from None


def parse(raw: bytes | str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """Decode, check and parse a JSON body; BodyRejected names what is wrong with it."""
    text = decode(raw, max_bytes=max_bytes)
    if nesting_depth(text) > max_depth:
        raise BodyRejected(400, "malformed_json", f"the body nests deeper than {max_depth} levels")
    try:
        return json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise BodyRejected(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
