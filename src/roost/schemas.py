"""The JSON Schemas users give (tracking plan contracts), made safe to run on every event:
self-contained — a `$ref` may point only inside the schema (`#/…`), and nothing is ever
fetched, so no schema reaches the network or the file system while ingest waits — and with
every pattern (`pattern`, `patternProperties`, and the names `additionalProperties` weighs)
matched by RE2 in linear time (patterns.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError
from referencing import Registry
from referencing.exceptions import NoSuchResource

from roost import patterns
from roost.errors import BadRequest

REF_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")
VALUE_KEYWORDS = ("enum", "const", "default", "examples")  # values, not schemas


def _no_fetch(uri: str) -> Any:
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]


REGISTRY: Registry[Any] = Registry(retrieve=_no_fetch)  # type: ignore[call-arg]


def audit(node: Any, where: str) -> None:
    """Refuse a remote or file ref and a pattern RE2 cannot run, naming where it is."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            audit(item, f"{where}[{i}]")
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        here = f"{where}.{key}"
        if key in VALUE_KEYWORDS:
            continue
        if key in REF_KEYWORDS and isinstance(value, str) and not value.startswith("#"):
            raise BadRequest(
                f"{here}: only local refs (#/…) are allowed, a schema must be self-contained "
                f"(got {value[:200]!r})",
                field=here,
            )
        if key == "pattern" and isinstance(value, str):
            _pattern_ok(value, here)
        if key == "patternProperties" and isinstance(value, dict):
            for name in value:
                _pattern_ok(name, f"{here}.{name}")
        audit(value, here)


def _pattern_ok(pattern: str, where: str) -> None:
    try:
        patterns.compile(pattern)
    except patterns.PatternError as exc:
        raise BadRequest(f"{where}: {exc}", field=where) from None


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not patterns.compile(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, given: dict[str, Any], instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in given.items():
        compiled = patterns.compile(pattern)
        for name, value in instance.items():
            if compiled.search(name):
                yield from validator.descend(value, subschema, path=name, schema_path=pattern)


def _additional_properties(
    validator: Any, given: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    named = schema.get("properties", {})
    compiled = [patterns.compile(p) for p in schema.get("patternProperties", {})]
    extras = [k for k in instance if k not in named and not any(c.search(k) for c in compiled)]
    if validator.is_type(given, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], given, path=extra)
    elif given is False and extras:
        listed = ", ".join(repr(e) for e in sorted(extras))
        verb = "was" if len(extras) == 1 else "were"
        yield ValidationError(f"Additional properties are not allowed ({listed} {verb} unexpected)")


_RE2_KEYWORDS = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
}
_classes: dict[type[Any], type[Any]] = {}


def validator(schema: dict[str, Any]) -> Any:
    """A jsonschema validator for the schema, on RE2, fetching nothing."""
    base = jsonschema.validators.validator_for(schema)
    if base not in _classes:
        _classes[base] = jsonschema.validators.extend(base, _RE2_KEYWORDS)  # type: ignore[no-untyped-call]
    return _classes[base](schema, registry=REGISTRY)
