"""The station graph: which stations neighbour which, how far apart and in which direction.

``build_station_graph`` turns a station table (``station, latitude, longitude``) into a
``StationGraph``: directed edges ``source → target`` from each station's ``k`` nearest
neighbours and/or every station within ``radius_km`` (haversine distance on the WGS84 sphere),
each with

- ``distance_km``: great-circle distance;
- ``bearing_deg``: initial compass bearing of the path from ``source`` to ``target``
  (0 = north, clockwise); air moves from source to target when the wind blows *towards* this
  bearing, i.e. when the wind comes *from* ``bearing_deg + 180``;
- ``weight``: a Gaussian distance kernel ``exp(-(d / scale)²)``, ``scale`` = the median edge
  distance (1 for edges without a distance).

Stations without coordinates cannot be placed: with ``missing_coordinates="fully_connected"``
(default) each is linked both ways to every other station with weight 1 and NaN distance and
bearing (the network as a whole still informs it); with ``"isolated"`` it gets no edges.

The graph is a plain value: ``to_dict``/``from_dict`` (JSON-safe) and ``to_frame``/``from_frame``
(one row per edge plus one row per isolated station) round-trip it exactly, so it can be stored
as an asset. Neighbour search is done in blocks, so 1,000 stations cost a few MB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

EARTH_RADIUS_KM = 6371.0088
EDGE_COLUMNS = ("source", "target", "distance_km", "bearing_deg", "weight")
MissingCoordinates = Literal["fully_connected", "isolated"]


def haversine_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance in km between points given in degrees (broadcasts)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def initial_bearing_deg(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Compass bearing (0 = north, clockwise, in [0, 360)) of the path from point 1 to point 2."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dlmb = np.radians(np.asarray(lon2) - np.asarray(lon1))
    x = np.sin(dlmb) * np.cos(p2)
    y = np.cos(p1) * np.sin(p2) - np.sin(p1) * np.cos(p2) * np.cos(dlmb)
    return np.degrees(np.arctan2(x, y)) % 360.0


@dataclass(frozen=True)
class StationGraph:
    """Stations (nodes, in a fixed order) and directed weighted edges between them."""

    stations: tuple[str, ...]
    latitude: np.ndarray
    longitude: np.ndarray
    source: np.ndarray  # int64 node index of each edge's source
    target: np.ndarray  # int64 node index of each edge's target
    distance_km: np.ndarray
    bearing_deg: np.ndarray
    weight: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)

    # --- shape -------------------------------------------------------------------------------
    @property
    def n_stations(self) -> int:
        return len(self.stations)

    @property
    def n_edges(self) -> int:
        return len(self.source)

    def index_of(self, station: str) -> int:
        return self.stations.index(station)

    def neighbours(self, station: str) -> list[str]:
        """Stations with an edge into ``station``, nearest first."""
        i = self.index_of(station)
        sel = np.flatnonzero(self.target == i)
        order = np.argsort(np.nan_to_num(self.distance_km[sel], nan=np.inf), kind="stable")
        return [self.stations[self.source[j]] for j in sel[order]]

    def edge_index(self) -> np.ndarray:
        """``(2, n_edges)`` int64 array ``[source; target]`` (the torch-geometric layout)."""
        return np.vstack([self.source, self.target]).astype(np.int64)

    def weight_matrix(self, normalise: bool = False) -> np.ndarray:
        """Dense ``W[target, source]`` of edge weights; rows sum to 1 when ``normalise``."""
        w = np.zeros((self.n_stations, self.n_stations))
        w[self.target, self.source] = self.weight
        if normalise:
            sums = w.sum(axis=1, keepdims=True)
            w = np.divide(w, sums, out=np.zeros_like(w), where=sums > 0)
        return w

    def wind_alignment(self, wind_from_deg: np.ndarray) -> np.ndarray:
        """Per edge, cos of the angle between the wind's travel direction at the source and the edge.

        ``wind_from_deg`` is ``(..., n_stations)`` compass degrees the wind comes from (NaN =
        unknown); the result is ``(..., n_edges)`` in [-1, 1]: 1 when the wind carries air straight
        from source to target, -1 when straight back; 0 where wind or bearing is unknown.
        """
        wind = np.asarray(wind_from_deg, dtype=float)[..., self.source]
        towards = np.radians(wind + 180.0)
        cos = np.cos(towards - np.radians(self.bearing_deg))
        return np.nan_to_num(cos, nan=0.0)

    def for_stations(self, stations: list[str] | tuple[str, ...]) -> "StationGraph":
        """The graph re-indexed to ``stations`` (that order); unknown stations become isolated."""
        stations = tuple(str(s) for s in stations)
        if stations == self.stations:
            return self
        position = {s: i for i, s in enumerate(stations)}
        new_index = np.array([position.get(s, -1) for s in self.stations], dtype=np.int64)
        src, dst = new_index[self.source], new_index[self.target]
        keep = (src >= 0) & (dst >= 0)
        lat = np.full(len(stations), np.nan)
        lon = np.full(len(stations), np.nan)
        old = {s: i for i, s in enumerate(self.stations)}
        for s, i in position.items():
            if s in old:
                lat[i], lon[i] = self.latitude[old[s]], self.longitude[old[s]]
        return StationGraph(
            stations=stations, latitude=lat, longitude=lon,
            source=src[keep], target=dst[keep],
            distance_km=self.distance_km[keep], bearing_deg=self.bearing_deg[keep],
            weight=self.weight[keep], settings=dict(self.settings),
        )

    # --- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (NaN becomes ``None``) that ``from_dict`` turns back into this graph."""
        return {
            "stations": list(self.stations),
            "latitude": _to_list(self.latitude),
            "longitude": _to_list(self.longitude),
            "edges": {
                "source": self.source.astype(int).tolist(),
                "target": self.target.astype(int).tolist(),
                "distance_km": _to_list(self.distance_km),
                "bearing_deg": _to_list(self.bearing_deg),
                "weight": _to_list(self.weight),
            },
            "settings": dict(self.settings),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "StationGraph":
        edges = data["edges"]
        return cls(
            stations=tuple(data["stations"]),
            latitude=_to_array(data["latitude"]),
            longitude=_to_array(data["longitude"]),
            source=np.asarray(edges["source"], dtype=np.int64),
            target=np.asarray(edges["target"], dtype=np.int64),
            distance_km=_to_array(edges["distance_km"]),
            bearing_deg=_to_array(edges["bearing_deg"]),
            weight=_to_array(edges["weight"]),
            settings=dict(data.get("settings", {})),
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per edge (station names, distance, bearing, weight) and per isolated station.

        Node coordinates ride along as ``source_latitude``/``source_longitude`` (and the target's);
        an isolated station is a row with ``target`` = NaN. Settings go to ``frame.attrs``.
        """
        names = np.asarray(self.stations, dtype=object)
        frame = pd.DataFrame({
            "source": names[self.source] if self.n_edges else pd.Series(dtype=object),
            "target": names[self.target] if self.n_edges else pd.Series(dtype=object),
            "distance_km": self.distance_km,
            "bearing_deg": self.bearing_deg,
            "weight": self.weight,
            "source_latitude": self.latitude[self.source],
            "source_longitude": self.longitude[self.source],
            "target_latitude": self.latitude[self.target],
            "target_longitude": self.longitude[self.target],
        })
        linked = set(self.source.tolist()) | set(self.target.tolist())
        lonely = [i for i in range(self.n_stations) if i not in linked]
        if lonely:
            extra = pd.DataFrame({
                "source": names[lonely], "target": None,
                "source_latitude": self.latitude[lonely], "source_longitude": self.longitude[lonely],
            })
            frame = pd.concat([frame, extra], ignore_index=True)
        frame.attrs["stations"] = list(self.stations)
        frame.attrs["settings"] = dict(self.settings)
        return frame

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> "StationGraph":
        """Rebuild from ``to_frame`` output (station order from ``attrs`` when present)."""
        edges = frame[frame["target"].notna()]
        lonely = frame[frame["target"].isna()]
        order = frame.attrs.get("stations")
        if not order:
            seen: dict[str, None] = {}
            for s in list(frame["source"]) + list(edges["target"]):
                seen.setdefault(str(s), None)
            order = list(seen)
        position = {s: i for i, s in enumerate(order)}
        lat = np.full(len(order), np.nan)
        lon = np.full(len(order), np.nan)
        for name_col, lat_col, lon_col in (("source", "source_latitude", "source_longitude"),
                                           ("target", "target_latitude", "target_longitude")):
            part = edges if name_col == "target" else pd.concat([edges, lonely])
            for name, la, lo in zip(part[name_col], part[lat_col], part[lon_col]):
                lat[position[str(name)]], lon[position[str(name)]] = la, lo
        return cls(
            stations=tuple(order), latitude=lat, longitude=lon,
            source=np.array([position[str(s)] for s in edges["source"]], dtype=np.int64),
            target=np.array([position[str(s)] for s in edges["target"]], dtype=np.int64),
            distance_km=edges["distance_km"].to_numpy(float),
            bearing_deg=edges["bearing_deg"].to_numpy(float),
            weight=edges["weight"].to_numpy(float),
            settings=dict(frame.attrs.get("settings", {})),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StationGraph):
            return NotImplemented
        arrays = ("latitude", "longitude", "source", "target", "distance_km", "bearing_deg", "weight")
        return self.stations == other.stations and self.settings == other.settings and all(
            np.array_equal(getattr(self, a), getattr(other, a), equal_nan=True) for a in arrays
        )

    __hash__ = None  # type: ignore[assignment]


def build_station_graph(
    stations: pd.DataFrame,
    k: int | None = 8,
    radius_km: float | None = None,
    missing_coordinates: MissingCoordinates = "fully_connected",
    block_size: int = 256,
) -> StationGraph:
    """Edges from each station's ``k`` nearest neighbours, or every station within ``radius_km``.

    With both set, an edge needs both (the k nearest, but none beyond the radius); with neither
    every located pair is linked. ``stations`` needs ``station``, and ``latitude``/``longitude``
    when known (missing columns or NaN mean "no coordinates", see the module docstring).
    """
    if "station" not in stations.columns:
        raise ValueError("build_station_graph needs a 'station' column")
    if missing_coordinates not in ("fully_connected", "isolated"):
        raise ValueError(f"missing_coordinates must be 'fully_connected' or 'isolated', not {missing_coordinates!r}")
    if k is not None and k < 1:
        raise ValueError("k must be at least 1")
    table = stations.drop_duplicates("station").reset_index(drop=True)
    names = tuple(str(s) for s in table["station"])
    lat = pd.to_numeric(table.get("latitude", pd.Series(np.nan, index=table.index)), errors="coerce").to_numpy(float)
    lon = pd.to_numeric(table.get("longitude", pd.Series(np.nan, index=table.index)), errors="coerce").to_numpy(float)
    located = np.flatnonzero(np.isfinite(lat) & np.isfinite(lon))
    unlocated = np.flatnonzero(~(np.isfinite(lat) & np.isfinite(lon)))

    src_parts, dst_parts, dist_parts = [], [], []
    for start in range(0, len(located), block_size):
        rows = located[start:start + block_size]  # targets of this block
        d = haversine_km(lat[rows, None], lon[rows, None], lat[None, located], lon[None, located])
        d[np.arange(len(rows)), start + np.arange(len(rows))] = np.inf  # no self loops
        keep = np.isfinite(d)
        if radius_km is not None:
            keep &= d <= radius_km
        if k is not None and len(located) - 1 > k:
            kth = np.partition(d, k - 1, axis=1)[:, k - 1:k]
            keep &= d <= kth
        r, c = np.nonzero(keep)
        src_parts.append(located[c])
        dst_parts.append(rows[r])
        dist_parts.append(d[r, c])
    src = np.concatenate(src_parts) if src_parts else np.empty(0, np.int64)
    dst = np.concatenate(dst_parts) if dst_parts else np.empty(0, np.int64)
    dist = np.concatenate(dist_parts) if dist_parts else np.empty(0)
    bearing = initial_bearing_deg(lat[src], lon[src], lat[dst], lon[dst]) if len(src) else np.empty(0)
    scale = float(np.median(dist)) if len(dist) else 1.0
    scale = scale if scale > 0 else 1.0
    weight = np.exp(-((dist / scale) ** 2))

    if len(unlocated) and missing_coordinates == "fully_connected" and len(names) > 1:
        everyone = np.arange(len(names))
        extra_src, extra_dst = [], []
        for i in unlocated:
            others = everyone[everyone != i]
            extra_src += [others, np.full(len(others), i)]
            extra_dst += [np.full(len(others), i), others]
        pairs = np.unique(np.vstack([np.concatenate(extra_src), np.concatenate(extra_dst)]), axis=1)
        n_extra = pairs.shape[1]
        src = np.concatenate([src, pairs[0]])
        dst = np.concatenate([dst, pairs[1]])
        dist = np.concatenate([dist, np.full(n_extra, np.nan)])
        bearing = np.concatenate([bearing, np.full(n_extra, np.nan)])
        weight = np.concatenate([weight, np.ones(n_extra)])

    order = np.lexsort((src, dst))
    return StationGraph(
        stations=names, latitude=lat, longitude=lon,
        source=src[order].astype(np.int64), target=dst[order].astype(np.int64),
        distance_km=dist[order].astype(float), bearing_deg=bearing[order].astype(float),
        weight=weight[order].astype(float),
        settings={"k": k, "radius_km": radius_km, "missing_coordinates": missing_coordinates,
                  "distance_scale_km": scale},
    )


def _to_list(values: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(values, dtype=float)]


def _to_array(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)
