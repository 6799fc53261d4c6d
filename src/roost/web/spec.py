"""What a route says about itself for the API's description (openapi.py): a summary, its body
and answer (msgspec types where the code has them, else a JSON Schema), its query parameters.
Kept beside the route, so a route cannot be added without saying what it is."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.routing import Route

OBJECT: dict[str, Any] = {"type": "object"}


@dataclass(frozen=True)
class Doc:
    summary: str
    body: Any = None  # a msgspec type or a JSON Schema; None: no body
    answer: Any = None  # the 200 answer: likewise; None: a JSON object
    media: str = "application/json"  # of the answer
    query: tuple[tuple[str, str], ...] = ()  # (name, description) of query parameters
    tag: str = "API"
    # which keys it takes when the endpoint does not say (read_endpoint does): a name of
    # openapi.SECURITY, or "" for none
    auth: str | None = None


class ApiRoute(Route):
    """A Starlette route with its Doc."""

    def __init__(self, path: str, endpoint: Callable[..., Any], *, method: str, doc: Doc) -> None:
        super().__init__(path, endpoint, methods=[method])
        self.doc = doc
