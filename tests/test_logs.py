"""Structured logs: one JSON object per line, with the record's extra fields."""

from __future__ import annotations

import json
import logging

from roost.logs import JSONFormatter


def test_json_lines_keep_extra_fields() -> None:
    record = logging.makeLogRecord(
        {
            "name": "roost",
            "levelname": "WARNING",
            "msg": "budget %s",
            "args": ("notice",),
            "workspace": 3,
        }
    )
    line = JSONFormatter().format(record)
    entry = json.loads(line)
    assert entry["message"] == "budget notice"
    assert entry["level"] == "warning"
    assert entry["workspace"] == 3
    assert "\n" not in line
