"""Versioned retraining configuration in the lake: the config in force and every change to it.

The ``retraining_config`` asset writes a new version; sensors, checks and reports read
``current_config``. An invalid change raises ``ConfigError`` before anything is written, so the
previous version stays in force. A stored version that no longer validates (written by an older
release, edited by hand) is never used: ``config_in_force`` falls back to the newest valid
version and says so, and the platform keeps running on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from aqi_assets.core.configuration.config import DEFAULT_CONFIG, ConfigError, RetrainingConfig, parse_config
from aqi_assets.core.data.lake import Lake
from aqi_assets.core.data.network import Network

CONFIG_DATASET = "retraining_config"


def current_record(lake: Lake) -> dict:
    """The stored record ``{version, config, changes, at}``; version 0 = built-in defaults."""
    record = lake.read_json(CONFIG_DATASET)
    if not record:
        return {"version": 0, "config": DEFAULT_CONFIG.model_dump(), "changes": {}, "at": None}
    return record


@dataclass(frozen=True)
class ConfigInForce:
    """The configuration the platform runs on, its version, and why not the newest (``problem``)."""

    config: RetrainingConfig
    version: int
    problem: str | None = None


def config_in_force(lake: Lake) -> ConfigInForce:
    """The newest stored version that validates (the defaults when none does or none is stored)."""
    record = current_record(lake)
    try:
        return ConfigInForce(parse_config(record["config"]), int(record["version"]))
    except (ConfigError, KeyError, TypeError, ValueError) as exc:
        problem = f"retraining_config v{record.get('version', '?')} is invalid ({exc})"
    for older in reversed(history(lake)):
        if int(older.get("version", 0)) >= int(record.get("version", 0) or 0):
            continue
        try:
            config = parse_config(older["config"])
        except (ConfigError, KeyError, TypeError, ValueError):
            continue
        return ConfigInForce(config, int(older["version"]), f"{problem}; running on v{older['version']}, the last valid one")
    return ConfigInForce(DEFAULT_CONFIG, 0, f"{problem}; running on the built-in defaults")


def current_config(lake: Lake) -> RetrainingConfig:
    """The configuration in force (the defaults until a change is recorded; never an invalid version)."""
    return config_in_force(lake).config


def next_record(lake: Lake, changes: dict[str, Any], reset: bool = False, network: Network | None = None) -> dict:
    """Validate ``changes`` on top of the config in force (or the defaults when ``reset``).

    Returns the record of the new version without storing it; raises ``ConfigError`` naming the
    field when a key is unknown or a value invalid, or when ``training.target`` is a pollutant the
    ``network`` does not measure. A new target adds a note to review the absolute gates.
    """
    previous = current_record(lake)
    in_force = config_in_force(lake)
    base = DEFAULT_CONFIG if reset else in_force.config
    updated: RetrainingConfig = base.with_overrides(changes)
    if network is not None:
        try:
            network.require_target(updated.training.target)
        except ValueError as exc:
            raise ConfigError("training.target", str(exc)) from exc
    before, after = in_force.config.flat(), updated.flat()
    diff = {k: {"from": before.get(k), "to": v} for k, v in after.items() if before.get(k) != v}
    notes = []
    if "training.target" in diff and not {"gates.max_rmse", "gates.min_within_20"} & set(diff):
        notes.append(
            f"training.target is now {updated.training.target}: gates.max_rmse ({updated.gates.max_rmse:g} µg/m³) "
            f"and gates.min_within_20 ({updated.gates.min_within_20:g}) are absolute limits in the target's "
            "own scale; review them for it"
        )
    return {
        "version": int(previous["version"]) + 1,
        "config": updated.model_dump(),
        "changes": diff,
        "requested": dict(changes),
        "reset": reset,
        "notes": notes,
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def save_record(lake: Lake, record: dict) -> None:
    """Store a validated record as the version in force and keep a copy in the history."""
    lake.write_json(f"{CONFIG_DATASET}_history", f"v{int(record['version']):05d}", record)
    lake.write_json(CONFIG_DATASET, None, record)


def history(lake: Lake) -> list[dict]:
    """Every recorded version, oldest first."""
    return [lake.read_json(f"{CONFIG_DATASET}_history", key) for key in lake.keys(f"{CONFIG_DATASET}_history", ".json")]
