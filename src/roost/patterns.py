"""Every regular expression a user supplies (transformation conditions, contract schemas'
`pattern`, stats filters) runs on RE2: linear in the input whatever the pattern, so no
pattern can stall ingest for anyone. A pattern RE2 cannot run (backreferences, lookaround)
is refused when it is saved, as is one too long or needing too much memory."""

from __future__ import annotations

import functools
from typing import Any

import re2

MAX_PATTERN = 1000  # characters
MAX_MEMORY = 8 << 20  # bytes RE2 may use for one compiled pattern

_options = re2.Options()
_options.max_mem = MAX_MEMORY
_options.log_errors = False


class PatternError(ValueError):
    """Why a pattern is refused, in words for an error message."""


@functools.lru_cache(maxsize=4096)
def compile(pattern: str) -> Any:
    """A compiled RE2 pattern (with `search`), or PatternError."""
    if len(pattern) > MAX_PATTERN:
        raise PatternError(f"longer than {MAX_PATTERN} characters")
    try:
        return re2.compile(pattern, options=_options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        raise PatternError(
            f"not a regular expression RE2 can run in linear time ({text})"
        ) from None
