"""Shared fixtures: the real Beijing data directory and isolated Dagster/MLflow homes."""

from __future__ import annotations

from pathlib import Path

import pytest

BEIJING_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "beijing"


@pytest.fixture(scope="session")
def beijing_dir() -> Path:
    if not BEIJING_DIR.is_dir():
        pytest.skip(f"real Beijing data not found at {BEIJING_DIR}")
    return BEIJING_DIR
