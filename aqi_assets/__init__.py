"""AQI retraining platform: a Dagster asset project that keeps air-quality forecasts accurate."""

__version__ = "0.1.0"
