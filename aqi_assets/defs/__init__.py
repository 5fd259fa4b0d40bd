"""Dagster wiring: every module below is auto-loaded into the project's one ``Definitions``."""
