"""Training: forecasters (``forecasting``), candidates, metrics, gates, the MLflow registry and tracking,
and telling transient failures from deterministic ones.

May import ``data`` and ``configuration``.
"""
