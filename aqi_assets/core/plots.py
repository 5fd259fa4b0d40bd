"""Small PNG plots for people (asset metadata, reports), rendered headless with matplotlib."""

from __future__ import annotations

import base64
import importlib
import io

import pandas as pd


class _LazyPyplot:
    """``matplotlib.pyplot`` (headless, Agg), imported on first use: matplotlib takes about a
    second to import and the code location only needs it when a plot is drawn."""

    def __getattr__(self, name: str):
        matplotlib = importlib.import_module("matplotlib")
        matplotlib.use("Agg")
        return getattr(importlib.import_module("matplotlib.pyplot"), name)


plt = _LazyPyplot()


def figure_png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def png_markdown(png: bytes, alt: str) -> str:
    """Markdown that shows ``png`` inline (a data URL; no file server needed)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def day_profile_png(frame: pd.DataFrame, column: str, title: str, max_lines: int = 12) -> bytes:
    """One line per station (up to ``max_lines``) of ``column`` over the day, plus the network median."""
    fig, ax = plt.subplots(figsize=(6, 2.4))
    values = frame.assign(_v=pd.to_numeric(frame[column], errors="coerce"))
    pivot = values.pivot_table(index="timestamp", columns="station", values="_v", aggfunc="mean")
    for station in list(pivot.columns)[:max_lines]:
        ax.plot(pivot.index, pivot[station], lw=0.8, alpha=0.6)
    if len(pivot.columns):
        ax.plot(pivot.index, pivot.median(axis=1), color="black", lw=2, label="network median")
        ax.legend(loc="upper left", fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    fig.autofmt_xdate()
    return figure_png(fig)


def promotion_history_png(scores: pd.DataFrame, changes: list[dict], title: str) -> bytes:
    """The serving champion's daily live RMSE (persistence beside it), each change of version marked.

    ``scores``: ``date``, ``rmse``, ``persistence_rmse`` (one model's ``model_performance`` rows);
    ``changes``: ``serving_since`` (the first data day served), ``to_version``, ``action``.
    """
    fig, ax = plt.subplots(figsize=(7, 2.6))
    if len(scores):
        days = pd.to_datetime(scores["date"])
        ax.plot(days, scores["rmse"].to_numpy(float), lw=1.2, label="champion live RMSE")
        ax.plot(days, scores["persistence_rmse"].to_numpy(float), lw=0.8, color="grey", alpha=0.7,
                label="persistence")
    for change in changes:
        if not change.get("serving_since"):
            continue
        when = pd.Timestamp(change["serving_since"])
        colour = "tab:red" if change.get("action") == "rollback" else "tab:green"
        ax.axvline(when, color=colour, ls="--", lw=1)
        ax.annotate(f"v{change['to_version']}", (when, 1.0), xycoords=("data", "axes fraction"), fontsize=7,
                    color=colour, ha="left", va="top")
    ax.set_title(title, fontsize=9)
    ax.set_ylabel("RMSE", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper left")
    fig.autofmt_xdate()
    return figure_png(fig)
