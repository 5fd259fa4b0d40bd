"""The ``retraining`` concurrency pool: the model steps' pool, its limit following the configuration.

The instance enforces the pool per step (``granularity: op`` in deploy/dagster.yaml): a model
step waits until the pool has room, so at most that many models train at once. Its limit is
``operations.max_concurrent_retrainings``, set through Dagster's concurrency API whenever the
configuration is recorded and re-checked by ``platform_health_sensor`` every minute.
"""

import dagster as dg

RETRAINING_POOL = "retraining"


def apply_pool_limit(instance: dg.DagsterInstance, limit: int) -> bool:
    """Set the pool's limit to ``limit`` when it differs; whether it changed."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return False
    if storage.get_concurrency_info(RETRAINING_POOL).slot_count == limit:
        return False
    storage.set_concurrency_slots(RETRAINING_POOL, limit)
    return True
