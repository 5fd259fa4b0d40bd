"""What is forecast: the target column and how many hours ahead of the issue time."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from aqi_assets.core.data.schema import DEFAULT_TARGET, POLLUTANTS


@dataclass(frozen=True)
class ForecastSpec:
    """Forecast ``target`` at ``issue time + horizon_hours`` from observations up to the issue time."""

    target: str = DEFAULT_TARGET
    horizon_hours: int = 1

    def __post_init__(self):
        if self.target not in POLLUTANTS:
            raise ValueError(f"unknown target {self.target!r}; expected a pollutant, one of {list(POLLUTANTS)}")
        if int(self.horizon_hours) != self.horizon_hours or self.horizon_hours < 1:
            raise ValueError(f"horizon_hours must be a positive integer, not {self.horizon_hours!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ForecastSpec":
        return cls(target=str(data["target"]), horizon_hours=int(data["horizon_hours"]))
