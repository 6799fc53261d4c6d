"""The transformation language: declarative steps, compiled once from a project's config.

A step is a JSON/TOML table with a `step` kind and its arguments, and an optional `when`
condition that limits it to the events it matches:

- `rename_event` {from, to}; `rename_property` {from, to}; `drop_property` {name};
- `set_property` {name, value}: a string value is a template, `{path}` replaced by that field
  (`"{properties.first} {properties.last}"`); a template that is one `{path}` keeps its type;
- `filter` {when}: drop the events that match; `sample` {rate}: keep that fraction, chosen by
  messageId so a retried event gets the same answer;
- `function` {name}: a Python function from the `roost.transformations` entry point group; it
  takes the event as a dict and returns it (changed or not), or None to drop it.

Property names are paths: a bare name is in `properties`; `traits.plan`,
`context.page.path` reach elsewhere. Conditions: `{"field": path, <op>: value}` with op one
of equals, not_equals, in, not_in, exists, gt, gte, lt, lte, contains, matches; and `all`,
`any`, `not` to combine them.

A step changes the event it is given in place (`Step.mutate`), so a list of steps costs one
copy per event, not one per step: `private()` copies the event and the dicts the steps write
(`Step.writes`) once, and a deeper write copies the nested dicts on its path. The event
before the transformations is then intact if one of them fails. `Step.apply` does both, for
a step on its own.
"""

from __future__ import annotations

import operator
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import msgspec

from roost import patterns
from roost.errors import BadRequest
from roost.model import STORED_FIELDS, Event, as_dict

ENTRY_POINTS = "roost.transformations"
DICT_FIELDS = ("properties", "traits", "context", "integrations")
ALIASES = {
    "messageId": "message_id",
    "userId": "user_id",
    "anonymousId": "anonymous_id",
    "groupId": "group_id",
    "previousId": "previous_id",
    "sessionId": "session_id",
    "name": "event",
}
OPS = (
    "equals", "not_equals", "in", "not_in", "exists", "gt", "gte", "lt", "lte", "contains",
    "matches",
)  # fmt: skip
_MISSING = object()
_ORDER: dict[str, Callable[[Any, Any], Any]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
_TEMPLATE = re.compile(r"\{([^{}]+)\}")

# A compiled step: the event in, the event out (a new one or the same), or None to drop it.
Apply = Callable[[Event], Event | None]
Condition = Callable[[Event], bool]


@dataclass(frozen=True)
class Step:
    label: str  # "rename_event", "function:my_fn", for the debugger and error messages
    mutate: Apply  # changes a private event in place; returns it, another event, or None
    writes: frozenset[str] = frozenset()  # the dict fields it changes in place

    def apply(self, event: Event) -> Event | None:
        """The step on a private copy: the given event is left as it was."""
        return self.mutate(private(event, self.writes))


def private(event: Event, roots: frozenset[str]) -> Event:
    """A copy of the event whose own fields and `roots` dicts (at their top level) are its own."""
    copy = msgspec.structs.replace(event)
    for root in roots:
        setattr(copy, root, dict(getattr(event, root)))
    return copy


def _bad(where: str, rule: str) -> BadRequest:
    return BadRequest(f"{where}: {rule}", field=where)


def parse_path(path: Any, where: str, default_root: str | None = None) -> tuple[str, ...]:
    if not isinstance(path, str) or not path.strip():
        raise _bad(where, "must be a field path such as properties.plan")
    parts = tuple(path.strip().split("."))
    head = ALIASES.get(parts[0], parts[0])
    if head in DICT_FIELDS:
        if len(parts) < 2 and default_root is not None:
            raise _bad(where, f"must name a field inside {head}")
        return (head, *parts[1:])
    if head in STORED_FIELDS and len(parts) == 1 and default_root is None:
        return (head,)
    if default_root is not None:
        return (default_root, *parts)
    raise _bad(where, f"{path!r} is not a field of the event")


def getter(path: tuple[str, ...]) -> Callable[[Event], Any]:
    """`get` for one path, with the common short paths made direct (the hot path)."""
    if len(path) == 1:
        name = path[0]
        return lambda e: getattr(e, name, _MISSING)
    if len(path) == 2 and path[0] in DICT_FIELDS:
        root, key = path
        return lambda e: getattr(e, root).get(key, _MISSING)
    return lambda e: get(e, path)


def get(event: Event, path: tuple[str, ...]) -> Any:
    value: Any = getattr(event, path[0], _MISSING)
    for part in path[1:]:
        if not isinstance(value, dict):
            return _MISSING
        value = value.get(part, _MISSING)
    return value


def _with(root: dict[str, Any], keys: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A copy of `root` with the path set to value (or removed, for _MISSING)."""
    head, rest = keys[0], keys[1:]
    out = dict(root)
    if not rest:
        if value is _MISSING:
            out.pop(head, None)
        else:
            out[head] = value
        return out
    inner = root.get(head)
    if not isinstance(inner, dict):
        if value is _MISSING:
            return root
        inner = {}
    out[head] = _with(inner, rest, value)
    return out


def put(event: Event, path: tuple[str, ...], value: Any) -> None:
    """Set (or, with _MISSING, remove) a path of a private event, in place."""
    root = getattr(event, path[0])
    key = path[1]
    if len(path) == 2:
        if value is _MISSING:
            root.pop(key, None)
        else:
            root[key] = value
        return
    inner = root.get(key)
    if isinstance(inner, dict):
        root[key] = _with(inner, path[2:], value)  # the nested dicts are shared: copied
    elif value is not _MISSING:
        root[key] = _with({}, path[2:], value)


def _compare(op: str, arg: Any, where: str) -> Callable[[Any], bool]:
    if op == "equals":
        return lambda v: v == arg
    if op == "not_equals":
        return lambda v: v != arg
    if op in ("in", "not_in"):
        if not isinstance(arg, list):
            raise _bad(where, "must be a list")
        allowed = list(arg)
        return (lambda v: v in allowed) if op == "in" else (lambda v: v not in allowed)
    if op == "exists":
        if not isinstance(arg, bool):
            raise _bad(where, "must be true or false")
        return lambda v: (v is not _MISSING and v is not None) == arg
    if op in ("gt", "gte", "lt", "lte"):
        if isinstance(arg, bool) or not isinstance(arg, int | float | str):
            raise _bad(where, "must be a number or a string")

        compare = _ORDER[op]

        def ordered(v: Any) -> bool:
            if isinstance(v, bool) or (
                type(v) is not type(arg)
                and not (isinstance(v, int | float) and isinstance(arg, int | float))
            ):
                return False
            return bool(compare(v, arg))

        return ordered
    if op == "contains":
        return lambda v: (
            (isinstance(v, str) and isinstance(arg, str) and arg in v)
            or (isinstance(v, list) and arg in v)
        )
    if not isinstance(arg, str):
        raise _bad(where, "must be a regular expression")
    try:
        pattern = patterns.compile(arg)
    except patterns.PatternError as exc:
        raise _bad(where, str(exc)) from None
    return lambda v: isinstance(v, str) and pattern.search(v) is not None


def condition(spec: Any, where: str) -> Condition:
    if not isinstance(spec, dict) or not spec:
        raise _bad(where, "must be a condition such as {field = ..., equals = ...}")
    for combinator in ("all", "any"):
        if combinator in spec:
            parts = spec[combinator]
            if len(spec) != 1 or not isinstance(parts, list) or not parts:
                raise _bad(f"{where}.{combinator}", "must be the only key, a non-empty list")
            each = [condition(p, f"{where}.{combinator}[{i}]") for i, p in enumerate(parts)]
            if combinator == "all":
                return lambda e: all(c(e) for c in each)
            return lambda e: any(c(e) for c in each)
    if "not" in spec:
        if len(spec) != 1:
            raise _bad(f"{where}.not", "must be the only key")
        inner = condition(spec["not"], f"{where}.not")
        return lambda e: not inner(e)
    path = parse_path(spec.get("field"), f"{where}.field")
    ops = [k for k in spec if k != "field"]
    if len(ops) != 1 or ops[0] not in OPS:
        raise _bad(where, f"needs exactly one of {', '.join(OPS)} beside field")
    test = _compare(ops[0], spec[ops[0]], f"{where}.{ops[0]}")
    value_of = getter(path)
    if ops[0] == "equals":
        wanted = spec["equals"]
        return lambda e: value_of(e) == wanted
    return lambda e: test(value_of(e))


def template(value: Any, where: str) -> Callable[[Event], Any]:
    if not isinstance(value, str) or "{" not in value:
        return lambda e: value
    whole = _TEMPLATE.fullmatch(value)
    if whole:
        value_of = getter(parse_path(whole.group(1), where))
        return lambda e: None if (v := value_of(e)) is _MISSING else v
    paths = {m.group(1): parse_path(m.group(1), where) for m in _TEMPLATE.finditer(value)}

    def render(e: Event) -> str:
        def one(m: re.Match[str]) -> str:
            v = get(e, paths[m.group(1)])
            return "" if v is _MISSING or v is None else str(v)

        return _TEMPLATE.sub(one, value)

    return render


def _function(name: Any, where: str) -> Callable[[dict[str, Any]], Any]:
    if not isinstance(name, str) or not name:
        raise _bad(where, f"must name a function of the {ENTRY_POINTS} entry points")
    found = entry_points(group=ENTRY_POINTS, name=name)
    if not found:
        raise _bad(where, f"no function {name!r} in the {ENTRY_POINTS} entry points")
    fn = next(iter(found)).load()
    if not callable(fn):
        raise _bad(where, f"{name!r} is not callable")
    return fn  # type: ignore[no-any-return]


def _run_function(fn: Callable[[dict[str, Any]], Any], name: str) -> Apply:
    def apply(event: Event) -> Event | None:
        result = fn(as_dict(event))
        if result is None:
            return None
        if not isinstance(result, dict):
            raise TypeError(f"{name} returned {type(result).__name__}, not a dict or None")
        return msgspec.convert({**result, "ip": None}, Event)

    return apply


def _require(spec: dict[str, Any], where: str, *names: str) -> list[Any]:
    missing = [n for n in names if n not in spec]
    if missing:
        raise _bad(f"{where}.{missing[0]}", "is required")
    return [spec[n] for n in names]


def compile_step(spec: Any, where: str) -> Step:
    if not isinstance(spec, dict):
        raise _bad(where, "must be a table with a step key")
    kind = spec.get("step")
    when = condition(spec["when"], f"{where}.when") if "when" in spec else None
    apply: Apply
    writes: frozenset[str] = frozenset()
    if kind == "rename_event":
        old, new = _require(spec, where, "from", "to")
        if not isinstance(new, str) or not new:
            raise _bad(f"{where}.to", "must be a non-empty string")

        def apply(e: Event) -> Event | None:
            if e.event == old:
                e.event = new
            return e

    elif kind == "rename_property":
        old, new = _require(spec, where, "from", "to")
        src = parse_path(old, f"{where}.from", "properties")
        dst = parse_path(new, f"{where}.to", "properties")
        writes = frozenset({src[0], dst[0]})

        value_of = getter(src)

        def apply(e: Event) -> Event | None:
            value = value_of(e)
            if value is not _MISSING:
                put(e, src, _MISSING)
                put(e, dst, value)
            return e

    elif kind == "drop_property":
        (names,) = _require(spec, where, "name")
        paths = [
            parse_path(n, f"{where}.name", "properties")
            for n in (names if isinstance(names, list) else [names])
        ]

        writes = frozenset(path[0] for path in paths)

        def apply(e: Event) -> Event | None:
            for path in paths:
                if get(e, path) is not _MISSING:
                    put(e, path, _MISSING)
            return e

    elif kind == "set_property":
        name, value = _require(spec, where, "name", "value")
        path = parse_path(name, f"{where}.name", "properties")
        render = template(value, f"{where}.value")
        writes = frozenset({path[0]})

        def apply(e: Event) -> Event | None:
            put(e, path, render(e))
            return e

    elif kind == "filter":
        if when is None:
            raise _bad(f"{where}.when", "is required: the condition of the events to drop")
        matched, when = when, None

        def apply(e: Event) -> Event | None:
            return None if matched(e) else e

    elif kind == "sample":
        (rate,) = _require(spec, where, "rate")
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 1:
            raise _bad(f"{where}.rate", "must be a number above 0 and at most 1")
        threshold = rate * 2**32

        def apply(e: Event) -> Event | None:
            return e if zlib.crc32(e.message_id.encode()) < threshold else None

    elif kind == "function":
        (name,) = _require(spec, where, "name")
        apply = _run_function(_function(name, f"{where}.name"), name)
        kind = f"function:{name}"
    else:
        raise _bad(
            f"{where}.step",
            "must be one of rename_event, rename_property, drop_property, set_property, "
            "filter, sample, function",
        )
    if when is not None:
        only, inner = when, apply

        def apply(e: Event) -> Event | None:
            return inner(e) if only(e) else e

    return Step(str(kind), apply, writes)


def compile_steps(specs: Any, where: str = "transformations") -> list[Step]:
    if not isinstance(specs, list):
        raise _bad(where, "must be a list of steps")
    return [compile_step(spec, f"{where}[{i}]") for i, spec in enumerate(specs)]
