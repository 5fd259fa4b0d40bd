"""``aqi-retrain ingest --from D --to D``: a backfill of the daily ``ingest_day`` partitions, with progress.

The days are launched as one Dagster partition backfill (the same thing as the UI's *Materialize →
backfill* on ``ingest_day``): the daemon queues one run per day (observations with their
quality gates, feature sketches, live scores). The command follows the backfill with a progress
bar and ends with what succeeded and which days failed, naming each failed day's run. A failed
day never enters a training window; re-running the command retries only what is not stored.
"""

from __future__ import annotations

import sys
import time
from datetime import date, timedelta

from aqi_assets.cli.graphql import ApiError, DagsterApi

INGEST_JOB = "ingest_day"
PARTITION_SET = f"{INGEST_JOB}_partition_set"
DONE = {"SUCCESS", "FAILURE", "CANCELED"}

PARTITION_NAMES = """
query PartitionNames($repository: RepositorySelector!, $name: String!) {
  partitionSetOrError(repositorySelector: $repository, partitionSetName: $name) {
    __typename
    ... on PartitionSet { partitionsOrError { __typename ... on Partitions { results { name } } } }
    ... on PartitionSetNotFoundError { message }
    ... on PythonError { message }
  }
}"""

LAUNCH_BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PartitionSetNotFoundError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { invalidOutputName }
    ... on UnauthorizedError { message }
    ... on PythonError { message }
  }
}"""

BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      status numPartitions
      partitionStatuses { results { partitionName runId runStatus } }
      error { message }
    }
    ... on BackfillNotFoundError { message }
    ... on PythonError { message }
  }
}"""


def days_to_ingest(api: DagsterApi, first: date, last: date) -> list[str]:
    """The partition keys ``first``..``last``; a day outside the source's partitions is an error."""
    if last < first:
        raise ApiError(f"--to {last} is before --from {first}", exit_code=2)
    result = api.execute(PARTITION_NAMES, {"repository": api.repository(), "name": PARTITION_SET})["partitionSetOrError"]
    if result["__typename"] != "PartitionSet":
        raise ApiError(f"the server has no {INGEST_JOB} partitions: {result.get('message', result['__typename'])}")
    known = [p["name"] for p in result["partitionsOrError"].get("results") or []]
    wanted = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    outside = [d for d in wanted if d not in set(known)]
    if outside:
        span = f"{known[0]}..{known[-1]}" if known else "none"
        raise ApiError(f"{len(outside)} day(s) are not days of the source (first {outside[0]}); its days are {span}",
                       exit_code=2)
    return wanted


def launch_backfill(api: DagsterApi, days: list[str]) -> str:
    params = {"selector": {"partitionSetName": PARTITION_SET, "repositorySelector": api.repository()},
              "partitionNames": days, "title": f"ingest {days[0]}..{days[-1]}",
              "tags": [{"key": "aqi/ingest", "value": f"{days[0]}..{days[-1]}"}]}
    result = api.execute(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        raise ApiError(f"cannot launch the backfill: {result.get('message', result['__typename'])}")
    return result["backfillId"]


def backfill_state(api: DagsterApi, backfill_id: str) -> dict:
    result = api.execute(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
    if result["__typename"] != "PartitionBackfill":
        raise ApiError(f"backfill {backfill_id}: {result.get('message', result['__typename'])}")
    return result


def ingest(api: DagsterApi, first: date, last: date, wait: bool = True, timeout: float = 24 * 3600,
           progress: bool = True):
    """Launch the backfill of ``first``..``last`` and (with ``wait``) follow it to the end."""
    from aqi_assets.cli.commands import Result, describe_server

    server = api.server()

    days = days_to_ingest(api, first, last)
    backfill_id = launch_backfill(api, days)
    data = {"backfill_id": backfill_id, "server": server, "days": len(days), "first": days[0], "last": days[-1]}
    head = f"{describe_server(server)}\nBackfill {backfill_id} of {len(days)} day(s) {days[0]}..{days[-1]} launched"
    if not wait:
        return Result(data, head + " (follow it in the UI: Overview → Backfills)")
    bar = _bar(len(days)) if progress else None
    deadline = time.monotonic() + timeout
    try:
        while True:
            state = backfill_state(api, backfill_id)
            statuses = {p["partitionName"]: p for p in (state.get("partitionStatuses") or {}).get("results") or []}
            finished = [d for d in days if (statuses.get(d) or {}).get("runStatus") in DONE]
            if bar is not None:
                bar.n = len(finished)
                bar.refresh()
            if len(finished) == len(days) or state["status"] in ("FAILED", "CANCELED", "COMPLETED_FAILED"):
                break
            if time.monotonic() > deadline:
                raise ApiError(f"backfill {backfill_id} not finished after {timeout:.0f} s "
                               f"({len(finished)} of {len(days)} days done; backfills need a running dagster-daemon)")
            time.sleep(1.0)
    finally:
        if bar is not None:
            bar.close()
    failed = {d: statuses[d].get("runId") for d in days if (statuses.get(d) or {}).get("runStatus") in
              ("FAILURE", "CANCELED")}
    succeeded = sum(1 for d in days if (statuses.get(d) or {}).get("runStatus") == "SUCCESS")
    data.update({"status": state["status"], "succeeded": succeeded, "failed": failed})
    lines = [head, f"{succeeded} of {len(days)} day(s) ingested"]
    if failed:
        lines.append(f"{len(failed)} day(s) failed (they never enter a training window; see each run in the UI):")
        lines += [f"  {day}: run {run_id}" for day, run_id in failed.items()]
    if state.get("error"):
        lines.append(f"backfill error: {state['error']['message'].strip().splitlines()[0]}")
    return Result(data, "\n".join(lines), exit_code=1 if failed or state.get("error") else 0)


def _bar(total: int):
    from tqdm import tqdm

    return tqdm(total=total, unit="day", file=sys.stderr, dynamic_ncols=True, desc="ingest")
