"""Twenty manual retraining requests at once: each accepted or deduplicated with a reason,
retrained one at a time through the daemon's run queue, none lost.

The twenty requests are two distinct requests (reasons) each sent ten times, as UI
double-clicks or a client retrying would. Identical requests waiting in the queue share one
run id (aqi_assets/defs/training/manual_requests.py), so the run storage accepts one and
refuses the rest; this keeps the test to two fast-preset retrainings on the Celery stack
(about 70 s each: ten steps, each in a fresh worker process), under three minutes, while every
request is accounted for. The overlap check covers every retraining run of the session.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import pytest

from aqi_assets.defs.training.manual_requests import REQUEST_KEY_TAG, launch_manual_request, manual_request

pytestmark = pytest.mark.integration

REASONS = [f"load test operator {i}" for i in range(2)]
REQUESTS = [(reason, copy) for copy in range(10) for reason in REASONS]  # 20, interleaved


def test_twenty_manual_requests_are_accepted_or_deduplicated_and_run_one_at_a_time(scaleout):
    instance = scaleout.instance
    scaleout.workspace()  # the code server is up before the burst

    def send(item):
        reason, _copy = item
        request = manual_request(instance, "xgboost", reason, "high")
        try:
            outcome = launch_manual_request(scaleout.workspace().create_request_context(), request)
        except Exception as exc:  # counted: a request must never vanish silently
            return ("error", request.run_id, repr(exc))
        return (outcome.outcome, outcome.run_id, outcome.reason)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(send, REQUESTS))
    sent_in = time.monotonic() - started
    outcomes = [a[0] for a in answers]
    assert outcomes.count("error") == 0, answers
    accepted = {a[1] for a in answers if a[0] == "accepted"}
    deduplicated = [a for a in answers if a[0] == "deduplicated"]
    assert len(accepted) + len(deduplicated) == 20  # none disappears
    assert len(accepted) == len(REASONS)
    assert all(a[1] in accepted and "already queued as run" in a[2] for a in deduplicated)
    # every accepted request is a run; every duplicate names one of them
    key_runs = {r.dagster_run.run_id for r in instance.get_run_records(dg.RunsFilter(tags={"aqi/trigger_type": "manual"}))
                if REQUEST_KEY_TAG in r.dagster_run.tags}
    assert accepted <= key_runs
    for run_id in accepted:
        run = scaleout.wait(run_id, timeout=240)
        assert run.status == dg.DagsterRunStatus.SUCCESS, scaleout.failure_messages(run_id)
    # one retraining at a time: no two retraining runs (of any test) overlapped
    records = instance.get_run_records(dg.RunsFilter(tags={"aqi/retraining": "true"}))
    spans = sorted((r.start_time, r.end_time) for r in records if r.start_time and r.end_time)
    overlaps = [(a, b) for a, b in zip(spans, spans[1:]) if b[0] < a[1]]
    assert not overlaps, overlaps
    elapsed = time.monotonic() - started
    print(f"load: 20 requests sent in {sent_in:.2f} s; {len(accepted)} accepted, {len(deduplicated)} deduplicated; "
          f"{len(spans)} retraining runs, 0 overlaps; all done {elapsed:.1f} s after the burst")
