"""Ingestion: the daily observations dataset, its quality gates, feature sketches, station graph."""
