"""Cron expressions of the configuration: validation, and whether a tick fell in a span of time.

The platform's schedules (``schedule.adapt_cron``, ``operations.report_cron``) are evaluated from
the configuration in force on every tick of a frequent Dagster schedule, so a change applies
without reloading the code location. Expressions are standard five-field crons (minute, hour,
day of month, month, day of week; names such as ``mon`` allowed) or ``@hourly``, ``@daily``,
``@weekly``, ``@monthly``.
"""

from __future__ import annotations

from datetime import datetime

from croniter import croniter

MACROS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
          "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *"}


def expand(expression: str) -> str:
    text = " ".join(str(expression).split())
    return MACROS.get(text, text)


def check_cron(expression: str) -> str:
    """``expression`` if it is a valid five-field cron (or a macro); else ``ValueError`` saying why."""
    text = expand(expression)
    fields = text.split(" ")
    if len(fields) != 5 or not croniter.is_valid(text):
        raise ValueError(
            f"{expression!r} is not a cron expression: five fields (minute hour day-of-month month "
            "day-of-week), e.g. '0 6 * * 1' for Mondays at 06:00, or @hourly/@daily/@weekly/@monthly"
        )
    return str(expression).strip()


def last_tick(expression: str, at: datetime) -> datetime:
    """The latest time at or before ``at`` that ``expression`` fires."""
    it = croniter(expand(expression), at)
    following = it.get_next(datetime)
    return at if following == at else croniter(expand(expression), following).get_prev(datetime)


def ticks_between(expression: str, after: datetime, until: datetime) -> list[datetime]:
    """Fire times ``t`` of ``expression`` with ``after < t <= until``."""
    it = croniter(expand(expression), after)
    out = []
    while (tick := it.get_next(datetime)) <= until:
        out.append(tick)
    return out


def next_tick(expression: str, after: datetime) -> datetime:
    return croniter(expand(expression), after).get_next(datetime)
