"""``aqi-retrain demo``: ingest a few days of the default source into the persistent instance."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from aqi_assets.core.sources import source_from_spec


def run_demo(days: int = 3) -> int:
    from aqi_assets.definitions import defs

    source = source_from_spec()
    instance = dg.DagsterInstance.get()
    job = defs.resolve_implicit_global_asset_job_def()
    selection = [dg.AssetKey("observations"), dg.AssetKey("feature_stats")]
    print(f"source: {source.spec}\nDagster home: {instance.root_directory}")
    first = source.first_day()
    for i in range(days):
        day = (first + timedelta(days=i)).isoformat()
        result = job.execute_in_process(
            instance=instance, partition_key=day, asset_selection=selection, raise_on_error=False
        )
        checks = [e.asset_check_evaluation_data for e in result.all_events
                  if e.event_type_value == "ASSET_CHECK_EVALUATION"]
        failed = [c.check_name for c in checks if not c.passed]
        rows = next((m.metadata.get("dagster/row_count") for m in result.asset_materializations_for_node("observations")), None)
        print(f"{day}: run {result.run_id[:8]} {'succeeded' if result.success else 'FAILED'}; "
              f"observations rows={rows.value if rows else '?'}; checks passed "
              f"{len(checks) - len(failed)}/{len(checks)}{' failed: ' + ', '.join(failed) if failed else ''}")
    print("open the UI on this instance with `make dev`")
    return 0
