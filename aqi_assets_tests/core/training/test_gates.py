"""Gate verdicts: thresholds from config, one-sided champion comparison, numbers in every message."""

from __future__ import annotations

from aqi_assets.core.configuration.config import GateSettings
from aqi_assets.core.training.gates import GATE_NAMES, evaluate_gates

SETTINGS = GateSettings()  # max RMSE 25, min within-20 0.70, champion tolerance 2 %


def verdicts(metrics, champion=None, settings=SETTINGS):
    return {g.name: g for g in evaluate_gates(metrics, champion, settings)}


def test_good_candidate_passes_every_gate():
    result = verdicts({"rmse": 15.0, "within_20": 0.74, "persistence_rmse": 19.4}, {"rmse": 15.5})
    assert list(result) == list(GATE_NAMES)
    assert all(g.passed for g in result.values())


def test_each_gate_fails_on_its_own_number():
    result = verdicts({"rmse": 26.0, "within_20": 0.65, "persistence_rmse": 25.0}, {"rmse": 20.0})
    assert not result["rmse_within_limit"].passed
    assert (result["rmse_within_limit"].threshold, result["rmse_within_limit"].value) == (25.0, 26.0)
    assert "26 µg/m³ > limit 25 (gates.max_rmse)" in result["rmse_within_limit"].message
    assert not result["accuracy_within_limit"].passed and "0.65" in result["accuracy_within_limit"].message
    assert not result["beats_persistence"].passed
    champion = result["no_worse_than_champion"]
    assert not champion.passed and champion.threshold == 20.0 * 1.02


def test_champion_gate_is_one_sided_with_tolerance():
    assert verdicts({"rmse": 10.0}, {"rmse": 14.0})["no_worse_than_champion"].passed  # better always passes
    assert verdicts({"rmse": 14.2}, {"rmse": 14.0})["no_worse_than_champion"].passed  # within 2 %
    assert not verdicts({"rmse": 14.4}, {"rmse": 14.0})["no_worse_than_champion"].passed
    loose = GateSettings(champion_tolerance=0.05)
    assert verdicts({"rmse": 14.6}, {"rmse": 14.0}, loose)["no_worse_than_champion"].passed
    first = verdicts({"rmse": 14.0}, None)["no_worse_than_champion"]
    assert first.passed and "no champion yet" in first.message
