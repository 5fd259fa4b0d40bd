"""The one typed source of every threshold and schedule (DESIGN.md defaults), validated.

Sensors, checks, reports and the backtest read a ``RetrainingConfig``; the
``retraining_config`` asset records each change. ``RetrainingConfig.with_overrides`` applies
dotted ``key=value`` edits (``gates.max_rmse=22``) and rejects unknown keys or bad values with a
message that names the field.
"""

from __future__ import annotations

import json
import typing

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aqi_assets.core.configuration.cron import check_cron

MODEL_NAMES: tuple[str, ...] = ("xgboost", "lstm", "gnn")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=True)


class TrainingSettings(_Section):
    """What a retraining fits: target, horizon, window and its time-ordered split."""

    target: Literal["pm25", "pm10", "so2", "no2", "co", "o3"] = Field(
        "pm25", description="the pollutant forecast (one the network measures)"
    )
    horizon_hours: int = Field(1, ge=1, le=72)
    window_days: int = Field(365, ge=7, le=3650, description="latest days used for training")
    validation_days: int = Field(30, ge=1)
    holdout_days: int = Field(30, ge=1)
    preset: Literal["full", "fast"] = Field(
        "full", description="model size: 'full' for real training, 'fast' for demos and tests"
    )
    warm_start: bool = Field(
        False, description="continue from the champion (XGBoost adds trees to its boosters, the torch models "
                           "fine-tune its weights for a few epochs) instead of training from scratch; the "
                           "champion/challenger gate still decides"
    )

    @model_validator(mode="after")
    def _split_fits(self):
        if self.validation_days + self.holdout_days >= self.window_days:
            raise ValueError(
                f"validation_days + holdout_days ({self.validation_days} + {self.holdout_days}) "
                f"must be less than window_days ({self.window_days})"
            )
        return self


class QualitySettings(_Section):
    """Data-quality limits of each day of ``observations`` (its checks read them)."""

    max_missing_share: float = Field(
        0.5, ge=0, le=1, description="missing_share_within_limit: share of the measured readings that may be missing"
    )
    max_target_missing_share: float = Field(
        0.5, ge=0, le=1, description="missing_share_within_limit: share of the target's readings that may be missing"
    )
    stuck_hours: int = Field(
        12, ge=2, le=24, description="no_stuck_sensors (warning): hours one value may repeat at a station"
    )


class GateSettings(_Section):
    """Blocking validation gates on every candidate model."""

    max_rmse: float = Field(25.0, gt=0, description="rmse_within_limit: holdout RMSE must be ≤ this")
    min_within_20: float = Field(
        0.70, ge=0, le=1, description="accuracy_within_limit: share within ±20 % must be ≥ this"
    )
    champion_tolerance: float = Field(
        0.02, ge=0, le=1,
        description="no_worse_than_champion: candidate RMSE may exceed the champion's by this share",
    )


class PerformanceSettings(_Section):
    """Live-error degradation rules (relative to the model's own level right after deployment)."""

    rule: Literal["raw", "skill"] = Field(
        "raw",
        description="raw: RMSE and within-20 % as measured; skill: both relative to persistence "
        "on the same days, so a seasonal rise that persistence shares is not degradation (the "
        "Beijing backtest, bench/results/policies.md, favours raw: its seasonal retrains pay off)",
    )
    rmse_increase: float = Field(0.15, gt=0, description="high: recent RMSE > reference × (1 + this)")
    accuracy_drop: float = Field(0.10, gt=0, lt=1, description="high: within-20 % drops by this share")
    critical_rmse_increase: float = Field(0.30, gt=0)
    critical_accuracy_drop: float = Field(0.20, gt=0, lt=1)
    recent_days: int = Field(14, ge=1, description="days of live error compared against the reference")
    reference_days: int = Field(14, ge=1, description="days after deployment that set the reference")
    min_recent_days: int = Field(7, ge=1, description="scored days the recent window needs to judge")
    min_reference_days: int = Field(7, ge=1, description="scored days the reference window needs")
    cooldown_days: int = Field(7, ge=0, description="no new performance trigger this soon after one")

    @model_validator(mode="after")
    def _consistent(self):
        if self.critical_rmse_increase < self.rmse_increase:
            raise ValueError("critical_rmse_increase must be ≥ rmse_increase")
        if self.critical_accuracy_drop < self.accuracy_drop:
            raise ValueError("critical_accuracy_drop must be ≥ accuracy_drop")
        if self.min_recent_days > self.recent_days:
            raise ValueError("min_recent_days must be ≤ recent_days")
        if self.min_reference_days > self.reference_days:
            raise ValueError("min_reference_days must be ≤ reference_days")
        return self


class DriftSettings(_Section):
    """Input-distribution drift rules computed from ``feature_stats`` sketches."""

    rule: Literal["sequential", "seed"] = Field(
        "sequential", description="sequential: CUSUM of each station's offset from its peers (default); seed: "
        "the original window rules (mean shift, std ratio, KS) alone",
    )
    mean_shift: float = Field(0.25, gt=0, description="critical: |Δmean| / max(|ref mean|, floor) > this")
    std_ratio_high: float = Field(2.0, gt=1, description="medium: within-day std ratio above this")
    std_ratio_low: float = Field(0.5, gt=0, lt=1, description="medium: within-day std ratio below this")
    psi: float = Field(0.25, gt=0, description="a significant distribution change with PSI above this is high")
    false_discovery_rate: float = Field(0.01, gt=0, lt=1, description="Benjamini–Hochberg q over all tests")
    current_days: int = Field(7, ge=1)
    onset_days: int = Field(
        2, ge=1, description="the last days of the current window are also tested alone, so a step "
        "change is seen before it fills the window",
    )
    reference_days: int = Field(30, ge=1, description="days per reference year (seasonal) or in total (recent)")
    reference: Literal["seasonal", "recent"] = "seasonal"
    seasonal_years: int = Field(2, ge=1, le=10, description="earlier years searched for the same weeks")
    min_peers: int = Field(3, ge=3, description="stations a day needs for the network comparison (the station and "
                           "at least two peers)")
    min_current_values: int = Field(12, ge=1, description="hourly values a current window needs to be tested")
    min_reference_values: int = Field(72, ge=1, description="hourly values a reference window needs")
    cooldown_days: int = Field(7, ge=0, description="no new drift trigger this soon after one; a sensor that stays "
                               "flat is alerted again after this many days")
    cusum_k: float = Field(
        0.75, ge=0, description="sequential, small-shift chart: allowance per day, in reference standard deviations",
    )
    retrain_features_cusum_k: float | None = Field(
        0.5, ge=0, description="sequential, small-shift chart: the allowance for retrain_features when they are a "
        "subset (what the models predict, where a change costs accuracy, so it is watched more closely); unset: "
        "cusum_k",
    )
    control_min_r2: float = Field(
        0.25, ge=0, description="sequential: a retrain feature is also charted against the station's own feature "
        "whose daily offset it follows best, when their squared correlation reaches this (above 1: never)",
    )
    cusum_h: float = Field(4.0, gt=0, description="sequential, small-shift chart: a finding (alert) from this sum on")
    cusum_clip: float = Field(2.5, gt=0, description="sequential, small-shift chart: one day adds at most this")
    cusum_large_k: float = Field(1.0, ge=0, description="sequential, large-shift chart: allowance per day")
    cusum_large_h: float = Field(8.0, gt=0, description="sequential, large-shift chart: a finding (alert) from this sum on")
    cusum_large_clip: float = Field(6.0, gt=0, description="sequential, large-shift chart: one day adds at most this")
    cusum_retrain_h: float = Field(
        14.0, gt=0, description="sequential: the large-shift level chart retrains the models from this sum on "
        "(a spread finding only alerts)",
    )
    min_duration_days: int = Field(2, ge=1, description="sequential: days a change must last before it fires")
    retrain_features: list[str] | None = Field(
        None, description="sequential: drift in these features retrains the models (unset: the forecast "
        "target, training.target; ['all']: every feature); drift elsewhere and flat lines alert only",
    )

    @model_validator(mode="after")
    def _consistent(self):
        if self.onset_days > self.current_days:
            raise ValueError("onset_days must be ≤ current_days")
        if self.cusum_retrain_h < self.cusum_large_h:
            raise ValueError("cusum_retrain_h must be ≥ cusum_large_h (what retrains is also a finding)")
        return self


class ScheduleSettings(_Section):
    """Per-model retraining interval and its daily adaptation from a performance score."""

    days: dict[str, int] = Field(
        default_factory=lambda: {"xgboost": 60, "lstm": 60, "gnn": 60},
        description="starting retraining interval per model: a backstop, so the performance and drift sensors "
        "decide when to retrain (the seed's schedule was xgboost 7, lstm 14, gnn 21, adapted within 3..30 days)",
    )
    low_score: float = Field(0.7, ge=0, le=1, description="score below this: interval × shrink_factor")
    high_score: float = Field(0.9, ge=0, le=1, description="score above this: interval × grow_factor")
    shrink_factor: float = Field(0.7, gt=0, lt=1)
    grow_factor: float = Field(1.3, gt=1)
    min_days: int = Field(
        30, ge=1, description="shortest interval: a falling score is the performance sensor's to act on, so the "
        "backstop does not shrink into a second, more nervous performance trigger (the seed's: 3)",
    )
    max_days: int = Field(90, ge=1, description="longest interval (the seed's: 30)")
    adapt_cron: str = Field("0 3 * * *", description="when the intervals adapt (retraining_schedule), a cron")

    _cron = field_validator("adapt_cron")(check_cron)

    @model_validator(mode="after")
    def _consistent(self):
        unknown = sorted(set(self.days) - set(MODEL_NAMES))
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; expected {list(MODEL_NAMES)}")
        short = {m: d for m, d in self.days.items() if d < 1}
        if short:
            raise ValueError(f"schedule days must be ≥ 1, got {short}")
        if self.low_score > self.high_score:
            raise ValueError("low_score must be ≤ high_score")
        if self.min_days > self.max_days:
            raise ValueError("min_days must be ≤ max_days")
        return self


class OperationsSettings(_Section):
    """Whether and how often triggers are checked, how many retrainings run, how long one may take."""

    automated_retraining: bool = Field(True, description="false stops every automatic trigger; manual ones still work")
    check_interval_minutes: int = Field(30, ge=1)
    max_concurrent_retrainings: int = Field(1, ge=1)
    retraining_timeout_seconds: int = Field(3600, ge=60)
    report_cron: str = Field("0 6 * * 1", description="when retraining_report is built, a cron")

    _cron = field_validator("report_cron")(check_cron)
    alert_webhook_url: str | None = None


class RetrainingConfig(_Section):
    """Every threshold and schedule of the platform, with the defaults of DESIGN.md."""

    training: TrainingSettings = Field(default_factory=TrainingSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    gates: GateSettings = Field(default_factory=GateSettings)
    performance: PerformanceSettings = Field(default_factory=PerformanceSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    operations: OperationsSettings = Field(default_factory=OperationsSettings)

    def drift_in_force(self) -> DriftSettings:
        """``drift`` with ``retrain_features`` resolved: unset is the forecast target, ``['all']`` every feature."""
        features = self.drift.retrain_features
        if features is None:
            features = [self.training.target]
        elif "all" in features:
            features = None
        return self.drift.model_copy(update={"retrain_features": features})

    def with_overrides(self, overrides: dict[str, Any]) -> "RetrainingConfig":
        """A new config with dotted-key edits applied (``{"gates.max_rmse": 22}``), validated.

        ``"null"``, ``"none"`` or ``"~"`` clear an optional setting; a list setting takes
        ``"no2,o3"`` or ``'["no2", "o3"]'``.
        """
        data = self.model_dump()
        for key, value in overrides.items():
            if isinstance(value, str) and value.strip() in _NULLS:
                value = None
            node = data
            parts = key.split(".")
            for part in parts[:-1]:
                if not isinstance(node, dict) or part not in node:
                    raise ConfigError(key, f"unknown setting {key!r}")
                node = node[part]
            leaf = parts[-1]
            if not isinstance(node, dict) or (leaf not in node and not _is_dict_field(parts[:-1])):
                raise ConfigError(key, f"unknown setting {key!r}")
            if isinstance(value, str) and _is_list_field(parts):
                try:
                    value = _as_list(value)
                except ValueError as exc:
                    raise ConfigError(key, f"{value!r} is not a list ('no2,o3' or '[\"no2\", \"o3\"]'): {exc}") from exc
            node[leaf] = value
        return parse_config(data)

    def flat(self) -> dict[str, Any]:
        """Every setting as ``section.name -> value`` (what ``config show`` prints)."""
        out: dict[str, Any] = {}
        for section, values in self.model_dump().items():
            for name, value in values.items():
                out[f"{section}.{name}"] = value
        return out


_NULLS = {"null", "none", "None", "~"}


def _as_list(text: str) -> list:
    text = text.strip()
    if text.startswith("["):
        return json.loads(text)
    return [part.strip() for part in text.split(",") if part.strip()]


def _is_list_field(path: list[str]) -> bool:
    """Whether the setting at ``path`` (section, name) is declared a list (optional or not)."""
    if len(path) != 2 or path[0] not in RetrainingConfig.model_fields:
        return False
    section = RetrainingConfig.model_fields[path[0]].annotation
    field = section.model_fields.get(path[1])
    return field is not None and any(typing.get_origin(t) is list or t is list
                                     for t in (field.annotation, *typing.get_args(field.annotation)))


def _is_dict_field(path: list[str]) -> bool:
    return path == ["schedule", "days"]


class ConfigError(ValueError):
    """An invalid setting: ``field`` is the dotted name, the message says what is wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def parse_config(data: dict[str, Any] | None) -> RetrainingConfig:
    """Validate a (possibly partial) nested dict into a config; errors name the dotted field."""
    try:
        return RetrainingConfig.model_validate(data or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "config"
        raise ConfigError(field, first["msg"].removeprefix("Value error, ")) from exc


DEFAULT_CONFIG = RetrainingConfig()
