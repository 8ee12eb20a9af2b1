"""The QuickBooks query language: parse and run against in-memory records.

``SELECT * | count(*) | f1, f2 FROM Entity [WHERE c1 AND c2 …] [ORDERBY f [ASC|DESC], …]
[STARTPOSITION n] [MAXRESULTS n]`` with operators ``= < > <= >= IN LIKE`` (``%`` wildcard). No OR, no JOIN.
String comparisons are case-insensitive; Customer/Item/Account/TaxCode queries return only active
records unless the WHERE clause mentions ``Active``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from . import errors
from .clock import parse_time

TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.|'')*')
      | (?P<number>-?\d+(?:\.\d+)?(?![\w.]))
      | (?P<op><=|>=|!=|<>|=|<|>)
      | (?P<punct>[(),*])
      | (?P<ident>[A-Za-z_][\w.]*)
    )""",
    re.VERBOSE,
)
KEYWORDS = {"select", "from", "where", "and", "or", "in", "like", "orderby", "order", "by", "asc", "desc"}
KEYWORDS |= {"startposition", "maxresults", "count"}
ACTIVE_FILTERED = {"Customer", "Item", "Account", "TaxCode"}

# The properties QuickBooks lets a WHERE or ORDERBY name, per entity: the "filterable" attributes
# of Intuit's API reference for each entity (developer.intuit.com, Accounting API, <Entity> object).
# Anything else, unknown or merely not filterable (Invoice.PrivateNote, Customer.Notes), is error
# 4001, never an empty answer (reference §2), so a typo in a look-up cannot pass for "not found".
_META = {"Id", "MetaData.CreateTime", "MetaData.LastUpdatedTime"}
FILTERABLE: dict[str, frozenset[str]] = {
    name: frozenset(p.casefold() for p in props | _META)
    for name, props in {
        "Customer": {
            "DisplayName",
            "GivenName",
            "MiddleName",
            "FamilyName",
            "CompanyName",
            "FullyQualifiedName",
            "PrintOnCheckName",
            "PrimaryEmailAddr",
            "Active",
            "Balance",
            "Job",
        },
        "Item": {"Name", "FullyQualifiedName", "Sku", "Type", "Active"},
        "Account": {
            "Name",
            "FullyQualifiedName",
            "Description",
            "SubAccount",
            "Active",
            "Classification",
            "AccountType",
            "AccountSubType",
            "CurrentBalance",
            "CurrentBalanceWithSubAccounts",
        },
        "TaxCode": {"Name", "Active", "Taxable"},
        "Invoice": {"DocNumber", "TxnDate", "DueDate", "CustomerRef", "Balance", "TotalAmt"},
        "Payment": {"TxnDate", "CustomerRef", "TotalAmt"},
        # CreditMemo reference: filterable Id, MetaData, DocNumber, TxnDate, CustomerRef, TotalAmt
        "CreditMemo": {"DocNumber", "TxnDate", "CustomerRef", "TotalAmt", "Balance"},
        "Preferences": set(),
        "CompanyInfo": set(),
    }.items()
}
DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$")


@dataclass
class Condition:
    field: str
    op: str  # = < > <= >= in like
    value: Any


@dataclass
class Query:
    entity: str
    count: bool = False
    fields: list[str] | None = None  # None = *
    where: list[Condition] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)
    start: int = 1
    max_results: int | None = None


@dataclass
class _Tok:
    kind: str
    text: str

    @property
    def kw(self) -> str:
        return self.text.lower() if self.kind == "ident" else ""


def tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    text = text.strip().rstrip(";")
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = TOKEN_RE.match(text, pos)
        if not m:
            raise errors.query_parse(f'Encountered "{text[pos : pos + 20].strip()}" at column {pos + 1}.')
        kind = m.lastgroup or ""
        tokens.append(_Tok(kind, m.group(kind)))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = tokenize(text)
        self.i = 0

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def next(self, what: str = "token") -> _Tok:
        tok = self.peek()
        if tok is None:
            raise errors.query_parse(f"Encountered <EOF>, expected {what}.")
        self.i += 1
        return tok

    def expect_kw(self, kw: str) -> None:
        tok = self.next(kw.upper())
        if tok.kw != kw:
            raise errors.query_parse(f'Encountered "{tok.text}", expected {kw.upper()}.')

    def expect_punct(self, p: str) -> None:
        tok = self.next(p)
        if tok.text != p:
            raise errors.query_parse(f'Encountered "{tok.text}", expected "{p}".')

    def ident(self, what: str) -> str:
        tok = self.next(what)
        if tok.kind != "ident" or tok.kw in KEYWORDS - {"count"}:
            raise errors.query_parse(f'Encountered "{tok.text}", expected {what}.')
        return tok.text

    def value(self) -> Any:
        tok = self.next("value")
        if tok.kind == "string":
            body = tok.text[1:-1]
            return re.sub(r"\\(.)|''", lambda m: m.group(1) or "'", body)
        if tok.kind == "number":
            return Decimal(tok.text)
        if tok.kw in ("true", "false"):
            return tok.kw == "true"
        raise errors.query_parse(f'Encountered "{tok.text}", expected a value.')

    def integer(self, what: str) -> int:
        tok = self.next(what)
        if tok.kind != "number" or not tok.text.lstrip("-").isdigit():
            raise errors.query_parse(f'Encountered "{tok.text}", expected an integer for {what}.')
        return int(tok.text)

    def parse(self) -> Query:
        self.expect_kw("select")
        count = False
        fields: list[str] | None = None
        tok = self.peek()
        if tok is not None and tok.text == "*":
            self.next()
        elif tok is not None and tok.kw == "count":
            self.next()
            self.expect_punct("(")
            self.expect_punct("*")
            self.expect_punct(")")
            count = True
        else:
            fields = [self.ident("field name")]
            while (t := self.peek()) is not None and t.text == ",":
                self.next()
                nxt = self.peek()
                if nxt is not None and nxt.text == "*":
                    self.next()
                    fields = None
                    continue
                name = self.ident("field name")
                if fields is not None:
                    fields.append(name)
        while (t := self.peek()) is not None and t.text == ",":  # "SELECT *, Sku FROM Item"
            self.next()
            self.ident("field name")
        self.expect_kw("from")
        q = Query(entity=self.ident("entity name"), count=count, fields=fields)
        tok = self.peek()
        if tok is not None and tok.kw == "where":
            self.next()
            q.where.append(self.condition())
            while (t := self.peek()) is not None and t.kw in ("and", "or"):
                if t.kw == "or":
                    raise errors.query_parse('Encountered " "OR" "OR "". OR is not supported.')
                self.next()
                q.where.append(self.condition())
        tok = self.peek()
        if tok is not None and tok.kw in ("orderby", "order"):
            self.next()
            if tok.kw == "order":
                self.expect_kw("by")
            while True:
                name = self.ident("field name")
                desc = False
                t = self.peek()
                if t is not None and t.kw in ("asc", "desc"):
                    desc = self.next().kw == "desc"
                q.order.append((name, desc))
                t = self.peek()
                if t is None or t.text != ",":
                    break
                self.next()
        while (tok := self.peek()) is not None and tok.kw in ("startposition", "maxresults"):
            self.next()
            if tok.kw == "startposition":
                q.start = self.integer("STARTPOSITION")
            else:
                q.max_results = self.integer("MAXRESULTS")
        tok = self.peek()
        if tok is not None:
            raise errors.query_parse(f'Encountered "{tok.text}" at the end of the query.')
        return q

    def condition(self) -> Condition:
        name = self.ident("field name")
        tok = self.next("operator")
        if tok.kind == "op":
            if tok.text in ("!=", "<>"):
                raise errors.query_parse(f'Encountered "{tok.text}". Operator not supported.')
            return Condition(name, tok.text, self.value())
        if tok.kw == "in":
            self.expect_punct("(")
            values = [self.value()]
            while (t := self.next(")")).text == ",":
                values.append(self.value())
            if t.text != ")":
                raise errors.query_parse(f'Encountered "{t.text}", expected ")".')
            return Condition(name, "in", values)
        if tok.kw == "like":
            pattern = self.value()
            if not isinstance(pattern, str):
                raise errors.query_parse("LIKE needs a quoted pattern.")
            return Condition(name, "like", pattern)
        raise errors.query_parse(f'Encountered "{tok.text}", expected an operator.')


def parse(text: str) -> Query:
    if not text or not text.strip():
        raise errors.query_parse("Encountered <EOF>: the query is empty.")
    return _Parser(text).parse()


# ---- evaluation ---------------------------------------------------------------------------------


def lookup(record: dict[str, Any], path: str) -> Any:
    current: Any = record
    for part in path.split("."):
        if not isinstance(current, dict):
            return None
        key = next((k for k in current if k.lower() == part.lower()), None)
        if key is None:
            return None
        current = current[key]
    if isinstance(current, dict) and "value" in current:
        return current["value"]
    return current


def _as_number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value.strip()):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            return None
    return None


def _as_time(value: Any, tz_offset: int) -> datetime | None:
    if isinstance(value, str) and DATETIME_RE.match(value.strip()):
        try:
            return parse_time(value, tz_offset)
        except ValueError:
            return None
    return None


def _comparable(left: Any, right: Any, tz_offset: int) -> tuple[Any, Any] | None:
    if left is None:
        return None
    if isinstance(left, bool) or isinstance(right, bool):
        if isinstance(right, str):
            right = right.lower() == "true"
        return (left, right) if isinstance(left, bool) else None
    ln, rn = _as_number(left), _as_number(right)
    if ln is not None and rn is not None:
        return ln, rn
    lt, rt = _as_time(left, tz_offset), _as_time(right, tz_offset)
    if lt is not None and rt is not None:
        return lt, rt
    return str(left).casefold(), str(right).casefold()


def _match(record: dict[str, Any], cond: Condition, tz_offset: int) -> bool:
    left = lookup(record, cond.field)
    if cond.op == "in":
        return any(_match(record, Condition(cond.field, "=", v), tz_offset) for v in cond.value)
    if cond.op == "like":
        if left is None:
            return False
        regex = "".join(".*" if ch == "%" else re.escape(ch) for ch in cond.value)
        return re.fullmatch(regex, str(left), re.IGNORECASE | re.DOTALL) is not None
    pair = _comparable(left, cond.value, tz_offset)
    if pair is None:
        return False
    a, b = pair
    try:
        return {
            "=": a == b,
            "<": a < b,
            ">": a > b,
            "<=": a <= b,
            ">=": a >= b,
        }[cond.op]
    except TypeError:
        return False


def _sort_key(value: Any, tz_offset: int) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    num = _as_number(value)
    if num is not None:
        return (1, num)
    ts = _as_time(value, tz_offset)
    if ts is not None:
        return (2, ts.timestamp())
    return (3, str(value).casefold())


def run(
    q: Query,
    entity: str,
    records: list[dict[str, Any]],
    tz_offset: int,
    default_max: int = 100,
    max_limit: int = 1000,
) -> dict[str, Any]:
    """Evaluate ``q`` over ``records`` (already resolved to ``entity``); returns the QueryResponse body."""
    if q.max_results is not None and (q.max_results < 1 or q.max_results > max_limit):
        raise errors.query_invalid(f"MAXRESULTS must be between 1 and {max_limit}, got {q.max_results}")
    if q.start < 1:
        raise errors.query_invalid(f"STARTPOSITION must be >= 1, got {q.start}")
    allowed = FILTERABLE.get(entity)
    if allowed is not None:
        for name in [c.field for c in q.where] + [name for name, _ in q.order]:
            if name.casefold() not in allowed:
                raise errors.query_invalid(f"Property {name} not found for Entity {entity}")
    conditions = list(q.where)
    if entity in ACTIVE_FILTERED and not any(c.field.lower() == "active" for c in conditions):
        conditions.append(Condition("Active", "=", True))
    rows = [r for r in records if all(_match(r, c, tz_offset) for c in conditions)]
    if q.count:
        return {"totalCount": len(rows)}
    for name, desc in reversed(q.order):  # stable sorts, last key first

        def key(record: dict[str, Any], field_name: str = name) -> tuple[int, Any]:
            return _sort_key(lookup(record, field_name), tz_offset)

        rows.sort(key=key, reverse=desc)
    limit = q.max_results or default_max
    page = rows[q.start - 1 : q.start - 1 + limit]
    if q.fields is not None:
        wanted = {f.split(".")[0].lower() for f in q.fields} | {"id"}
        page = [
            {k: v for k, v in r.items() if k.lower() in wanted} | {"domain": "QBO", "sparse": True}
            for r in page
        ]
    if not page:
        return {}
    # No totalCount in a select: only `select count(*)` answers one (reference §4, a recorded 2026
    # sandbox select: JasonIIVI/Rio-Ledger-Lens tests/fixtures/qbo/pull/010-post-query-account-p1.json)
    return {entity: page, "startPosition": q.start, "maxResults": len(page)}
