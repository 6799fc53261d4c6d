"""The unit the stages work on: one request's surviving events and the outcomes of the rest."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from roost.dialects.base import Parsed
from roost.model import Event, Key, Outcome, Reason


class Refusal(NamedTuple):
    """A stage's verdict that drops one event (None keeps it)."""

    reason: Reason
    message: str
    field: str | None
    status: int


Verdict = Refusal | None


@dataclass
class Batch:
    dialect: str
    key: Key | None
    parsed: Parsed
    events: list[Event] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)  # what a stage must undo in settle()
    # refused events worth keeping to run again later (a tracking plan's block): with why
    held: list[tuple[Event, Refusal]] = field(default_factory=list)

    @classmethod
    def of(cls, dialect: str, key: Key | None, parsed: Parsed) -> Batch:
        return cls(
            dialect=dialect,
            key=key,
            parsed=parsed,
            events=list(parsed.events),
            indexes=list(parsed.indexes),
            outcomes=list(parsed.outcomes),
        )

    @property
    def project_key(self) -> Key:
        assert self.key is not None, "authorize runs first"
        return self.key

    def field(self, index: int, name: str) -> str:
        return self.parsed.field(index, name)

    def keep(self, verdict: Callable[[int, Event], Verdict]) -> None:
        """Keep the events whose verdict is None; turn the others into outcomes.

        Most batches lose nothing, so the lists are rebuilt only from the first refusal on.
        """
        first = -1
        refusal: Verdict = None
        for pos, (index, event) in enumerate(zip(self.indexes, self.events, strict=True)):
            refusal = verdict(index, event)
            if refusal is not None:
                first = pos
                break
        if refusal is None:
            return
        events = self.events[:first]
        indexes = self.indexes[:first]
        self._refuse(self.indexes[first], refusal, self.events[first])
        for index, event in zip(self.indexes[first + 1 :], self.events[first + 1 :], strict=True):
            v = verdict(index, event)
            if v is None:
                events.append(event)
                indexes.append(index)
            else:
                self._refuse(index, v, event)
        self.events = events
        self.indexes = indexes

    def rewrite(self, fn: Callable[[int, Event], Event | Refusal]) -> None:
        """Replace each event by what `fn` returns for it: an event, or a refusal."""
        events: list[Event] = []
        indexes: list[int] = []
        for index, event in zip(self.indexes, self.events, strict=True):
            result = fn(index, event)
            if isinstance(result, Event):
                events.append(result)
                indexes.append(index)
            else:
                self._refuse(index, result, event)
        self.events = events
        self.indexes = indexes

    def _refuse(self, index: int, verdict: Refusal, event: Event) -> None:
        reason, message, field_name, status = verdict
        self.outcomes.append(
            Outcome(
                index=index,
                reason=reason,
                message=message,
                field=field_name,
                status=status,
                stored=status < 300,
                message_id=event.message_id,
            )
        )


class Stage(Protocol):
    def __call__(self, batch: Batch) -> None: ...


class Settling(Protocol):
    def settle(self, batch: Batch, stored: bool) -> None:
        """Undo or confirm what the stage reserved, once the Log has answered."""
        ...
