"""Twenty manual retraining requests at once, launched the way users launch them: each answered,
retrained one at a time through the daemon's run queue, none lost.

The twenty requests are GraphQL ``launchRun`` calls of ``manual_retraining`` with run config only
(what the Launchpad, ``DagsterGraphQLClient.submit_job_execution`` and ``aqi-retrain trigger``
send): two distinct requests (reasons), each sent ten times, as UI double-clicks or a client
retrying would. Every request becomes a run; the ``retraining`` pool lets one run at a time
start; the first of each identical pair trains, and every other one, created while its twin was
still waiting, is deduplicated in its first step (aqi_assets/defs/training/manual.py) and names
the run that answered it. The ``retraining`` pool lets one model train at a time; the overlap
check covers every model-training step of the session.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import pytest

pytestmark = pytest.mark.integration

REASONS = [f"load test operator {i}" for i in range(2)]
REQUESTS = [(reason, copy) for copy in range(10) for reason in REASONS]  # 20, interleaved


def test_twenty_manual_requests_are_answered_once_each_and_run_one_at_a_time(scaleout):
    instance = scaleout.instance
    scaleout.workspace()  # the code server is up before the burst

    def send(item):
        reason, _copy = item
        try:
            launched = scaleout.launch("manual_retraining", {"model": "xgboost", "reason": reason, "severity": "high"})
        except Exception as exc:  # counted: a request must never vanish silently
            return ("error", None, repr(exc))
        if launched["__typename"] != "LaunchRunSuccess":
            return ("error", None, repr(launched))
        return ("launched", launched["run"]["runId"], reason)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(send, REQUESTS))
    sent_in = time.monotonic() - started
    assert [a[0] for a in answers].count("error") == 0, answers
    runs = {a[1]: a[2] for a in answers}
    assert len(runs) == 20  # every request is a run: none disappears
    finished = {run_id: scaleout.wait(run_id, timeout=600) for run_id in runs}
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in finished.values()), \
        [scaleout.failure_messages(i) for i, r in finished.items() if r.status != dg.DagsterRunStatus.SUCCESS]
    outcomes = {run_id: r.tags.get("aqi/outcome") for run_id, r in finished.items()}
    trained = {run_id for run_id, outcome in outcomes.items() if outcome in ("promoted", "kept_by_gate")}
    deduplicated = {run_id for run_id, outcome in outcomes.items() if outcome == "deduplicated"}
    assert len(trained) == len(REASONS) and len(deduplicated) == 20 - len(REASONS), outcomes
    assert {runs[r] for r in trained} == set(REASONS)  # one retraining per distinct request
    for run_id in deduplicated:  # each names the identical request that answered it
        twin = finished[run_id].tags["aqi/deduplicated_into"]
        assert runs.get(twin) == runs[run_id] and (twin in trained or outcomes.get(twin) == "deduplicated")
        assert finished[run_id].tags["aqi/reason"] == runs[run_id]  # tagged from its config alone
    # one model training at a time: no two training steps (of any test) overlapped
    records = instance.get_run_records(dg.RunsFilter(tags={"aqi/retraining": "true"}))
    spans = sorted((s.start_time, s.end_time) for r in records for s in instance.get_run_step_stats(r.dagster_run.run_id)
                   if s.step_key == "train_models" and s.start_time and s.end_time)
    overlaps = [(a, b) for a, b in zip(spans, spans[1:]) if b[0] < a[1]]
    assert not overlaps, overlaps
    elapsed = time.monotonic() - started
    print(f"load: 20 requests launched in {sent_in:.2f} s; {len(trained)} retrained, {len(deduplicated)} "
          f"deduplicated; {len(spans)} model trainings, 0 overlaps; all done {elapsed:.1f} s after the burst")
