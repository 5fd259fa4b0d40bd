"""The time-ordered train / validation / holdout split of a training window, by calendar day."""

from __future__ import annotations

from datetime import date, timedelta
from typing import NamedTuple

import pandas as pd

from aqi_assets.core.configuration.config import TrainingSettings
from aqi_assets.core.data.schema import TIMESTAMP


class WindowSplit(NamedTuple):
    """Three disjoint, consecutive slices of the window (unpacks as ``train, valid, holdout``)."""

    train: pd.DataFrame
    valid: pd.DataFrame
    holdout: pd.DataFrame


def split_days(settings: TrainingSettings, end: date) -> dict[str, tuple[date, date]]:
    """First and last day (inclusive) of each part of the window that ends on ``end``."""
    holdout_start = end - timedelta(days=settings.holdout_days - 1)
    valid_end = holdout_start - timedelta(days=1)
    valid_start = valid_end - timedelta(days=settings.validation_days - 1)
    train_end = valid_start - timedelta(days=1)
    train_start = end - timedelta(days=settings.window_days - 1)
    return {"train": (train_start, train_end), "valid": (valid_start, valid_end),
            "holdout": (holdout_start, end)}


def split_window(frame: pd.DataFrame, settings: TrainingSettings, end: date | None = None) -> WindowSplit:
    """Cut the latest ``window_days`` ending on ``end`` (default: the frame's last day) in three.

    The holdout is the last ``holdout_days``, the validation slice the ``validation_days``
    before it, training the rest of the window; days outside the window are dropped. A model
    may read the end of an earlier slice for lags (``fit`` lays train and valid on one grid;
    evaluate the holdout on ``pd.concat([valid, holdout])``), never a later one.
    """
    if frame.empty:
        return WindowSplit(frame.copy(), frame.copy(), frame.copy())
    days = pd.to_datetime(frame[TIMESTAMP]).dt.normalize()
    end = end or days.max().date()
    parts = split_days(settings, end)

    def part(name: str) -> pd.DataFrame:
        first, last = parts[name]
        keep = (days >= pd.Timestamp(first)) & (days <= pd.Timestamp(last))
        return frame[keep.to_numpy()].reset_index(drop=True)

    return WindowSplit(part("train"), part("valid"), part("holdout"))
