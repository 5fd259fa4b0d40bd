"""The ``aqi-retrain`` command line: demo, backtest, and the GraphQL-backed control commands."""
