"""Tracking plans: per project, a JSON Schema per event name or call type, and what to do.

A contract targets an event name (`Order Completed`) or a call type written as
`type:identify`; its schema applies to the event's properties (traits for identify and
group). `action` is what a violation does: `block` (refuse the event), `omit` (store it
without the offending properties) or `allow` (store it, flagged). Each project also says what
happens to events no contract names: `allow`, `flag` or `block`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import fastjsonschema
import jsonschema
import msgspec

from roost import patterns, schemas
from roost.dialects.base import too_deep
from roost.errors import BadRequest
from roost.model import NAMED_TYPES

ACTIONS = ("block", "omit", "allow")
MAX_SCHEMA_DEPTH = 32
UNPLANNED = ("allow", "flag", "block")


@dataclass(frozen=True)
class Contract:
    target: str
    schema: dict[str, Any]
    action: str


@dataclass(frozen=True)
class Plan:
    """A project's contracts, schemas compiled once."""

    contracts: dict[str, tuple[Contract, Schema]]
    unplanned: str

    def find(self, event_type: str, name: str | None) -> tuple[Contract, Schema] | None:
        if name is not None and event_type in NAMED_TYPES and name in self.contracts:
            return self.contracts[name]
        return self.contracts.get(f"type:{event_type}")


def check(target: Any, json_schema: Any, action: Any, where: str = "") -> Contract:
    """A contract as given, checked; `where` prefixes the field named in an error."""
    if action not in ACTIONS:
        raise BadRequest(
            f"{where}action: must be one of {', '.join(ACTIONS)} (got {action!r})",
            field=f"{where}action",
        )
    if not isinstance(target, str) or not target:
        raise BadRequest(
            f"{where}target: must be an event name or type:<call type>", field=f"{where}target"
        )
    if not isinstance(json_schema, dict):
        raise BadRequest(f"{where}schema: must be a JSON Schema object", field=f"{where}schema")
    if too_deep(msgspec.json.encode(json_schema), MAX_SCHEMA_DEPTH):  # checkers recurse
        raise BadRequest(
            f"{where}schema: nested more than {MAX_SCHEMA_DEPTH} levels deep",
            field=f"{where}schema",
        )
    try:
        jsonschema.validators.validator_for(json_schema).check_schema(json_schema)
    except jsonschema.SchemaError as exc:
        raise BadRequest(
            f"{where}schema: not a valid JSON Schema ({exc.message})", field=f"{where}schema"
        ) from None
    schemas.audit(json_schema, f"{where}schema")
    return Contract(target, json_schema, action)


def compile_plan(found: list[Contract], unplanned: str) -> Plan:
    """A project's plan; a schema is compiled once, not at every reload of the plan."""
    return Plan({c.target: (c, _compile(msgspec.json.encode(c.schema))) for c in found}, unplanned)


# Keywords whose meaning differs between draft 7 (what fastjsonschema knows) and 2020-12
# (what jsonschema assumes without a $schema): a schema using one is checked by jsonschema only.
_LATER_KEYWORDS = frozenset(
    {
        "prefixItems", "$defs", "dependentRequired", "dependentSchemas", "unevaluatedItems",
        "unevaluatedProperties", "$anchor", "$dynamicRef", "$dynamicAnchor", "$recursiveRef",
        "$recursiveAnchor", "minContains", "maxContains", "$vocabulary",
    }
)  # fmt: skip
_DRAFTS = ("draft-04", "draft-06", "draft-07")


def _refuse_fetch(uri: str) -> Any:
    raise ValueError(f"{uri}: Roost fetches no schema")


# fastjsonschema would fetch a remote ref itself: it may not.
_NO_FETCH = dict.fromkeys(("http", "https", "file", "ftp", "data"), _refuse_fetch)


def _on_re2(fast: Callable[[Any], Any]) -> Callable[[Any], Any] | None:
    """fastjsonschema's code with its patterns (compiled with Python's re, which a pattern
    can stall) swapped for RE2's; None (jsonschema alone) if they cannot be found."""
    compiled = getattr(fast, "__globals__", {}).get("REGEX_PATTERNS")
    if not isinstance(compiled, dict):
        return None
    for pattern in list(compiled):
        compiled[pattern] = patterns.compile(pattern)
    return fast


def _keys(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            if key in ("enum", "const", "default", "examples"):
                continue  # values, not schemas
            if key == "items" and isinstance(value, list):
                yield "prefixItems"  # the tuple form: draft 7's items, 2020-12's prefixItems
            yield from _keys(value)
    elif isinstance(node, list):
        for item in node:
            yield from _keys(item)


class Schema:
    """A contract's schema compiled twice: fastjsonschema's generated code answers whether an
    event passes (the hot path, ~20x faster); jsonschema, only for an event that does not,
    lists every way it fails, with the messages and paths the debugger shows."""

    def __init__(self, parsed: dict[str, Any]) -> None:
        self.full = schemas.validator(parsed)
        self.fast: Callable[[Any], Any] | None = None
        self.broken: str | None = None
        try:
            schemas.audit(parsed, "schema")
        except BadRequest as exc:  # saved before Roost refused such schemas: never run it
            self.broken = exc.message
            return
        declared = parsed.get("$schema")
        if (declared is None or any(d in str(declared) for d in _DRAFTS)) and not (
            _LATER_KEYWORDS & set(_keys(parsed))
        ):
            try:
                self.fast = _on_re2(fastjsonschema.compile(parsed, handlers=_NO_FETCH))
            except (fastjsonschema.JsonSchemaDefinitionException, ValueError):
                self.fast = None  # jsonschema alone

    def passes(self, payload: Any) -> bool:
        """True if the fast check accepts it; False means ask `errors` (which may find none)."""
        if self.fast is None:
            return False
        try:
            self.fast(payload)
            return True
        except fastjsonschema.JsonSchemaValueException:
            return False

    def errors(self, payload: Any) -> list[jsonschema.ValidationError]:
        if self.broken is not None:
            return [jsonschema.ValidationError(f"the contract's schema cannot run: {self.broken}")]
        if self.passes(payload):
            return []
        found = self.full.iter_errors(payload)
        return sorted(found, key=lambda e: [str(p) for p in e.absolute_path])


@functools.lru_cache(maxsize=1024)
def _compile(schema: bytes) -> Schema:
    return Schema(msgspec.json.decode(schema))
