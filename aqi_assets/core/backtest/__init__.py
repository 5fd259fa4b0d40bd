"""The policy backtest: replaying a source day by day under retraining policies.

May import every other ``core`` package; nothing imports it but the CLI and benchmarks.
"""
