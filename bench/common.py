"""Shared benchmark plumbing: wall time, peak memory, child processes, JSON results, tables."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
from datetime import date
import time
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import psutil

from aqi_assets.core.data.schema import STATION
from aqi_assets.core.data.sources.base import ObservationSource

RESULTS_DIR = Path(__file__).resolve().parent / "results"


class StationSubset(ObservationSource):
    """Some stations of another source (``bench-triggers --stations``): a smaller network."""

    def __init__(self, source: ObservationSource, stations: list[str]):
        unknown = sorted(set(stations) - set(source.station_ids()))
        if unknown:
            raise ValueError(f"stations {unknown} are not in {source.spec!r} (it has {source.station_ids()})")
        self.inner, self.keep = source, set(stations)
        self.spec = f"{source.spec} (stations {','.join(sorted(stations))})"

    def stations(self) -> pd.DataFrame:
        table = self.inner.stations()
        return table[table[STATION].astype(str).isin(self.keep)].reset_index(drop=True)

    def network(self):  # what the network measures: the whole source's columns
        return self.inner.network()

    def first_day(self) -> date:
        return self.inner.first_day()

    def last_day(self) -> date | None:
        return self.inner.last_day()

    def read_day(self, day: date) -> pd.DataFrame:
        return self.read_range(day, day)

    def read_range(self, start: date, end: date) -> pd.DataFrame:
        frame = self.inner.read_range(start, end)
        return frame[frame[STATION].astype(str).isin(self.keep)].reset_index(drop=True)


class PeakMemory:
    """Peak resident memory (MB) of this process while the ``with`` block runs.

    A thread samples RSS every ``interval`` seconds; the result is the larger of the sampled
    peak and the growth-free ``ru_maxrss`` when that was reached inside the block.
    """

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._process = psutil.Process()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self._process.memory_info().rss / 2**20)
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakMemory":
        self._maxrss_before = max_rss_mb()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self._process.memory_info().rss / 2**20)
        if max_rss_mb() > self._maxrss_before:  # the lifetime peak was set inside the block
            self.peak_mb = max(self.peak_mb, max_rss_mb())


def max_rss_mb() -> float:
    """Lifetime peak RSS of this process in MB (``ru_maxrss`` is in KB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Stopwatch:
    """Wall-clock and CPU seconds of a ``with`` block."""

    def __enter__(self) -> "Stopwatch":
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._wall
        self.cpu_seconds = time.process_time() - self._cpu


def run_module_in_child(module: str, args: Sequence[str], timeout: float | None = None) -> dict[str, Any]:
    """Run ``python -m module *args --output FILE`` in a fresh process; return FILE's JSON.

    A fresh process gives each measurement its own clean memory peak. The child's output
    streams through to this process's terminal.
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        output = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", module, *args, "--output", str(output)]
        subprocess.run(cmd, check=True, timeout=timeout, env=dict(os.environ))
        return json.loads(output.read_text())


def write_result(name: str, data: Any) -> Path:
    """Write ``data`` as indented JSON to ``bench/results/<name>.json``."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def format_table(rows: list[dict[str, Any]], columns: Sequence[str], formats: dict[str, str] | None = None) -> str:
    """A plain-text table of ``rows`` (dicts) with right-aligned ``columns``."""
    formats = formats or {}

    def cell(row: dict, column: str) -> str:
        value = row.get(column)
        if value is None:
            return "-"
        return format(value, formats[column]) if column in formats else str(value)

    cells = [[cell(row, c) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) if cells else len(c) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    """CPU count and model, total memory and the 1-minute load average right now."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {"cpus": os.cpu_count(), "cpu_model": model,
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1), "load_avg_1m": round(load, 2)}


def format_markdown_table(rows: list[dict[str, Any]], columns: Sequence[str], headers: dict[str, str] | None = None,
                          formats: dict[str, str] | None = None) -> str:
    """A GitHub Markdown table of ``rows`` (dicts); numbers right-aligned."""
    headers, formats = headers or {}, formats or {}

    def cell(row: dict, column: str) -> str:
        value = row.get(column)
        if value is None:
            return "–"
        return format(value, formats[column]) if column in formats else str(value)

    lines = ["| " + " | ".join(headers.get(c, c) for c in columns) + " |",
             "|" + "|".join(":---" if i == 0 else "---:" for i in range(len(columns))) + "|"]
    lines += ["| " + " | ".join(cell(row, c) for c in columns) + " |" for row in rows]
    return "\n".join(lines)
