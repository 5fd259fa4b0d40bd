"""The Dagster-free core, one package per concept; imports run downwards only:

- ``configuration``: the versioned ``RetrainingConfig``, its store, crons, environment settings;
- ``data``: sources, schema and units, the network, quality checks, lake, datasets, feature
  sketches, station graph, AQI, fault injection;
- ``training``: forecasters, candidates, metrics, gates, registry, tracking, failure kinds;
- ``monitoring``: drift, triggers, live scoring, the adaptive schedule, alerts, report, health;
- ``backtest``: replaying a source under retraining policies;
- ``plots``: the PNG figures shown in the UI (shared by training and monitoring);
- ``text``: shortening text for people.
"""
