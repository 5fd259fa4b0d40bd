"""Dagster-free core: sources, features, metrics, drift, triggers, trainers, registry, backtest."""
