"""What a destination is: a class built from its options that delivers one batch at a time.

The forwarder around it (consumers/forwarder.py) owns everything else: the cursor, filters,
consent, mapping, batching, retries, dead letters and replay. A destination only says, by
raising DeliveryError, whether a failed batch is worth trying again (and when). Destinations
are found by kind in the `roost.destinations` entry point group, so a package can add one.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, Protocol

from roost.errors import BadRequest

ENTRY_POINTS = "roost.destinations"


class DeliveryError(Exception):
    """A batch was not delivered. `retry`: a later try may succeed; `retry_after`: not before."""

    def __init__(self, message: str, *, retry: bool = True, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.retry = retry
        self.retry_after = retry_after


class Destination(Protocol):
    def deliver(self, events: list[dict[str, Any]]) -> None:
        """Deliver the batch (Segment-shaped events, in Log order) or raise DeliveryError."""
        ...

    def close(self) -> None: ...


# A destination class: built from its options; raises BadRequest naming a bad option.
Factory = Callable[[dict[str, Any]], Destination]


def kinds() -> list[str]:
    return sorted({ep.name for ep in entry_points(group=ENTRY_POINTS)})


def factory(kind: str, where: str = "kind") -> Factory:
    found = entry_points(group=ENTRY_POINTS, name=kind)
    if not found:
        raise BadRequest(
            f"{where}: no destination kind {kind!r} (installed: {', '.join(kinds())})",
            field=where,
        )
    return next(iter(found)).load()  # type: ignore[no-any-return]


def option(
    options: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any = ...
) -> Any:
    """One option, checked: missing (without a default) or of the wrong type is refused."""
    if name not in options:
        if default is ...:
            raise BadRequest(f"{name}: is required", field=name)
        return default
    value = options[name]
    if not isinstance(value, kind) or (
        isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,))
    ):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise BadRequest(f"{name}: expected {names}", field=name)
    return value


def no_other_options(options: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(options) - known)
    if unknown:
        raise BadRequest(f"{unknown[0]}: unknown option", field=unknown[0])
