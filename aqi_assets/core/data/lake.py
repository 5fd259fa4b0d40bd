"""The platform's file store: Parquet frames and JSON records per dataset and partition key.

Layout: ``<root>/<dataset>/<key>.parquet`` (or ``.json``); unpartitioned items use the key
``_``. Writes are atomic (temp file + rename), so a crashed run never leaves half a file and
readers (sensors, the backtest, the CLI) can read while runs write.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import date
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

UNPARTITIONED = "_"


class Lake:
    """Datasets on a (shared) filesystem path."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, dataset: str, key: str | None = None, suffix: str = ".parquet") -> Path:
        return self.root / dataset / f"{key or UNPARTITIONED}{suffix}"

    def _atomic_write(self, target: Path, write) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        os.close(fd)
        try:
            write(tmp)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return target

    def write_frame(self, dataset: str, key: str | None, frame: pd.DataFrame) -> Path:
        return self._atomic_write(self.path(dataset, key), lambda p: frame.to_parquet(p, index=False))

    def read_frame(self, dataset: str, key: str | None = None) -> pd.DataFrame:
        path = self.path(dataset, key)
        if not path.exists():
            raise FileNotFoundError(f"{dataset} has no item {key or UNPARTITIONED!r} (looked for {path})")
        return pd.read_parquet(path)

    def write_json(self, dataset: str, key: str | None, record: Any) -> Path:
        text = json.dumps(record, indent=2, default=str, sort_keys=True)
        return self._atomic_write(self.path(dataset, key, ".json"), lambda p: Path(p).write_text(text))

    def read_json(self, dataset: str, key: str | None = None, default: Any = None) -> Any:
        path = self.path(dataset, key, ".json")
        if not path.exists():
            return default
        return json.loads(path.read_text())

    def has(self, dataset: str, key: str | None = None, suffix: str = ".parquet") -> bool:
        return self.path(dataset, key, suffix).exists()

    def keys(self, dataset: str, suffix: str = ".parquet") -> list[str]:
        folder = self.root / dataset
        if not folder.is_dir():
            return []
        return sorted(p.name[: -len(suffix)] for p in folder.iterdir()
                      if p.name.endswith(suffix) and not p.name.startswith("."))

    def days(self, dataset: str) -> list[date]:
        """The daily partition keys present for ``dataset``, as dates."""
        out = []
        for key in self.keys(dataset):
            try:
                out.append(date.fromisoformat(key))
            except ValueError:
                continue
        return out

    def read_days(self, dataset: str, days: Iterable[date]) -> pd.DataFrame:
        """Concatenate the frames of the given days that exist (missing days are skipped)."""
        frames = [pd.read_parquet(p) for d in days if (p := self.path(dataset, d.isoformat())).exists()]
        frames = [f for f in frames if len(f)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
