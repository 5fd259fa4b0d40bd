"""The platform's own health: the source, the configuration in force; each finding one line.

``platform_health`` is what ``platform_health_sensor`` reports on every tick (and ``aqi-retrain
status`` shows by evaluating that sensor): problems that stop the loop without stopping the code
location, such as an ``AQI_SOURCE`` that cannot be read or a stored configuration that no longer
validates (the platform then runs on the last valid version).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aqi_assets.core.configuration.store import config_in_force
from aqi_assets.core.data.lake import Lake
from aqi_assets.core.configuration.settings import automation_off_reason
from aqi_assets.core.data.sources import SourceError, source_from_spec

#: The sensor that reports ``platform_health`` (its name, for clients that evaluate it).
HEALTH_SENSOR = "platform_health_sensor"
#: The lake record of the latest check.
HEALTH_DATASET = "platform_health"


@dataclass(frozen=True)
class Finding:
    """One health finding: ``key`` names the concern (``source``, ...), ``ok`` or a problem, a sentence."""

    key: str
    ok: bool
    message: str


@dataclass
class Health:
    """Every finding of one check, problems first."""

    findings: list[Finding] = field(default_factory=list)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if not f.ok]

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """One line: ``healthy: ...`` or ``PROBLEM: ...`` with every finding."""
        head = "healthy" if self.ok else f"{len(self.problems)} PROBLEM(S)"
        ordered = self.problems + [f for f in self.findings if f.ok]
        return f"{head}: " + "; ".join(f"{f.key}: {f.message}" for f in ordered)


def source_finding(spec: str | None = None) -> Finding:
    """Whether ``AQI_SOURCE`` (or ``spec``) can be read, and what its network measures."""
    try:
        source = source_from_spec(spec)
        network = source.network()
        last = source.last_day()
    except (SourceError, OSError, ValueError) as exc:
        return Finding("source", False, f"cannot read the source: {exc}")
    days = f"{source.first_day()}..{last}" if last else f"from {source.first_day()}, no complete day yet"
    return Finding("source", True, f"{source.spec} ({len(source.station_ids())} stations, {days}); "
                                   f"{network.summary()}")


def config_finding(lake: Lake) -> Finding:
    """Which ``retraining_config`` version is in force, and whether a newer one had to be passed over."""
    in_force = config_in_force(lake)
    if in_force.problem:
        return Finding("config", False, in_force.problem)
    version = f"v{in_force.version}" if in_force.version else "the built-in defaults (no change recorded)"
    return Finding("config", True, f"retraining_config {version} in force")


def automation_finding(lake: Lake) -> Finding:
    """Whether the trigger sensors may request retraining (the environment and config switches)."""
    off = automation_off_reason(config_in_force(lake).config.operations.automated_retraining)
    return Finding("automation", True, f"{off}; manual retraining still works" if off
                   else "automated retraining on (drift, performance, schedule)")


#: A daemon whose last heartbeat is older than this is not healthy.
STALE_HEARTBEAT_SECONDS = 180


def daemon_finding(heartbeats: dict[str, float], now: float, up_since: float | None = None) -> Finding:
    """Whether every Dagster daemon (``type -> last heartbeat``, unix seconds) beats, and for how long."""
    if not heartbeats:
        return Finding("daemon", True, "no daemon heartbeat recorded (checked outside the daemon)")
    stale = {kind: now - beat for kind, beat in heartbeats.items() if now - beat > STALE_HEARTBEAT_SECONDS}
    if stale:
        silent = ", ".join(f"{kind} silent for {age:.0f} s" for kind, age in sorted(stale.items()))
        return Finding("daemon", False, f"{len(stale)} of {len(heartbeats)} daemons not healthy: {silent}")
    uptime = f", up for {format_duration(now - up_since)}" if up_since is not None else ""
    return Finding("daemon", True, f"{len(heartbeats)} daemons healthy{uptime}")


def format_duration(seconds: float) -> str:
    """``3 d 4 h``, ``5 h 12 min`` or ``7 min``."""
    minutes = int(seconds // 60)
    days, hours, minutes = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def platform_health(lake: Lake, spec: str | None = None, heartbeats: dict[str, float] | None = None,
                    now: float | None = None, up_since: float | None = None) -> Health:
    """Every finding: the source, the configuration in force, automation, and (given heartbeats) the daemons."""
    findings = [source_finding(spec), config_finding(lake), automation_finding(lake)]
    if heartbeats is not None:
        findings.append(daemon_finding(heartbeats, now, up_since))
    return Health(findings)
