"""Turning core results into Dagster metadata people read in the UI: tables, plots, check results."""


import dagster as dg
import pandas as pd

from aqi_assets.core.plots import png_markdown
from aqi_assets.core.data.validation import CheckOutcome


def markdown_table(frame: pd.DataFrame, max_rows: int = 12, floatfmt: str = ".3g") -> dg.MetadataValue:
    shown = frame.head(max_rows)
    text = shown.to_markdown(index=False, floatfmt=floatfmt)
    if len(frame) > max_rows:
        text += f"\n\n… {len(frame) - max_rows:,} more rows"
    return dg.MetadataValue.md(text)


def image(png: bytes, alt: str) -> dg.MetadataValue:
    return dg.MetadataValue.md(png_markdown(png, alt))


def check_result(outcome: CheckOutcome, asset_key: str | None = None) -> dg.AssetCheckResult:
    """An ``AssetCheckResult`` whose description and metadata name what failed and where."""
    metadata: dict = {k: v for k, v in outcome.figures.items() if isinstance(v, (int, float, str))}
    if outcome.problems:
        rows = pd.DataFrame([
            {"column": p.column or "", "station": p.station or "", "rows": p.count,
             "first rows": ", ".join(p.rows), "problem": p.detail}
            for p in outcome.problems
        ])
        metadata["problems"] = markdown_table(rows, max_rows=25)
        metadata["problem_count"] = len(outcome.problems)
    return dg.AssetCheckResult(
        check_name=outcome.name,
        asset_key=asset_key,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR if outcome.blocking else dg.AssetCheckSeverity.WARN,
        description=outcome.summary if not outcome.passed else outcome.description,
        metadata=metadata,
    )
