"""A project's goals: what counts as converting — an event (optionally with property values)
or a pageview of a path pattern. Kept in the project's configuration document (`goals:`),
checked when set; each is a set of Stats API filters (query/stats.py), so a goal is counted
by the same reports as anything else, and attributed to the visit it happened in.

    goals:
      - {name: Signed up, event: Signed Up}
      - {name: Bought pro, event: Order Completed, properties: {plan: pro}}
      - {name: Read the docs, page: /docs/*}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from roost.errors import BadRequest

MAX_GOALS = 50
MAX_NAME = 100
MAX_PROPERTIES = 10
MAX_TEXT = 200  # an event name, a page pattern, a property's name or value


@dataclass(frozen=True)
class Goal:
    name: str
    event: str | None = None
    page: str | None = None  # a path pattern: * is any characters
    properties: tuple[tuple[str, str], ...] = ()

    def filters(self) -> list[list[Any]]:
        """The Stats API filters (ANDed) an event must pass to be this goal."""
        if self.page is not None:
            pattern = "^" + ".*".join(re.escape(part) for part in self.page.split("*")) + "$"
            return [["is", "type", ["page"]], ["matches", "page", [pattern]]]
        found: list[list[Any]] = [["is", "event", [self.event]]]
        found += [["is", f"props:{key}", [value]] for key, value in self.properties]
        return found

    def spec(self) -> dict[str, Any]:
        """As the configuration document writes it."""
        out: dict[str, Any] = {"name": self.name}
        if self.page is not None:
            out["page"] = self.page
        else:
            out["event"] = self.event
            if self.properties:
                out["properties"] = dict(self.properties)
        return out


def _bad(field: str, rule: str) -> BadRequest:
    return BadRequest(f"{field}: {rule}", field=field)


def check_goals(raw: Any, where: str = "goals") -> list[Goal]:
    if not isinstance(raw, list):
        raise _bad(where, "must be a list of goals, each with a name and an event or a page")
    if len(raw) > MAX_GOALS:
        raise _bad(where, f"at most {MAX_GOALS} goals")
    goals: list[Goal] = []
    for i, item in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise _bad(at, "must be a table with a name and an event or a page")
        unknown = sorted(set(item) - {"name", "event", "page", "properties"})
        if unknown:
            raise _bad(f"{at}.{unknown[0]}", "is not a setting of a goal")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
            raise _bad(f"{at}.name", f"must be a name of 1 to {MAX_NAME} characters")
        if any(g.name == name for g in goals):
            raise _bad(f"{at}.name", f"{name!r} is the name of another goal")
        event, page = item.get("event"), item.get("page")
        if (event is None) == (page is None):
            raise _bad(at, "must have an event or a page (one of them)")
        if page is not None:
            if not isinstance(page, str) or not page.startswith("/") or len(page) > MAX_TEXT:
                raise _bad(
                    f"{at}.page",
                    f"must be a path pattern such as /docs/* (* is any text), "
                    f"at most {MAX_TEXT} characters",
                )
            if "properties" in item:
                raise _bad(f"{at}.properties", "goes with an event, not a page")
            goals.append(Goal(name, page=page))
            continue
        if not isinstance(event, str) or not event or len(event) > MAX_TEXT:
            raise _bad(f"{at}.event", f"must be an event name of at most {MAX_TEXT} characters")
        properties = item.get("properties", {})
        if not isinstance(properties, dict) or len(properties) > MAX_PROPERTIES:
            raise _bad(
                f"{at}.properties", f"must be a table of at most {MAX_PROPERTIES} property values"
            )
        values: list[tuple[str, str]] = []
        for key, value in properties.items():
            if not isinstance(key, str) or not key or len(key) > MAX_TEXT:
                raise _bad(f"{at}.properties", f"names a property with 1 to {MAX_TEXT} characters")
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise _bad(f"{at}.properties.{key}", "must be a text or a number")
            if len(str(value)) > MAX_TEXT:
                raise _bad(f"{at}.properties.{key}", f"at most {MAX_TEXT} characters")
            values.append((key, str(value)))
        goals.append(Goal(name, event=event, properties=tuple(values)))
    return goals
