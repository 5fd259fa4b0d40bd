"""The project's one ``Definitions`` (``defs``): everything under ``aqi_assets/defs``, merged once."""

from __future__ import annotations

import warnings
from pathlib import Path

import dagster as dg


def build_definitions() -> dg.Definitions:
    """Auto-load ``aqi_assets/defs`` and attach source-code references to every asset."""
    loaded = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        assets = dg.with_source_code_references(list(loaded.assets or []))
    return dg.Definitions(
        assets=assets,
        asset_checks=loaded.asset_checks,
        jobs=loaded.jobs,
        schedules=loaded.schedules,
        sensors=loaded.sensors,
        resources=loaded.resources,
        executor=loaded.executor,
        loggers=loaded.loggers,
    )


defs = build_definitions()
