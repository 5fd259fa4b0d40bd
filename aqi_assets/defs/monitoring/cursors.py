"""Sensor cursors: a JSON object per sensor, and the key that holds its last check (no Dagster import,
so the CLI can read them)."""

import json

#: Cursor key holding the unix time of the sensor's last check.
LAST_CHECK = "last_check"


def load_cursor(cursor: str | None) -> dict:
    try:
        state = json.loads(cursor) if cursor else {}
    except json.JSONDecodeError:
        return {}
    return state if isinstance(state, dict) else {}


def dump_cursor(state: dict) -> str:
    return json.dumps(state, sort_keys=True)


def without_last_check(cursor: str | None) -> str | None:
    """``cursor`` as if the check interval had passed (a check on demand, or a replayed day)."""
    state = load_cursor(cursor)
    state.pop(LAST_CHECK, None)
    return dump_cursor(state) if state else None
