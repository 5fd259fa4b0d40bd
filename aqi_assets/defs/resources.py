"""Resources shared by every asset, check and sensor: the source, the lake and its IO manager."""


from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field

from aqi_assets.core.lake import Lake
from aqi_assets.core.settings import lake_root
from aqi_assets.core.sources import ObservationSource, source_from_spec


class ObservationSourceResource(dg.ConfigurableResource):
    """The configured observation source (``AQI_SOURCE``: simulated, prsa:<dir> or csv:<dir>)."""

    spec: str = Field(default="", description="Source spec; empty means $AQI_SOURCE, else 'simulated'.")

    def get(self) -> ObservationSource:
        return source_from_spec(self.spec or None)


class LakeResource(dg.ConfigurableResource):
    """The platform's file store (Parquet/JSON per dataset and partition)."""

    root: str = Field(default="", description="Directory; empty means $AQI_LAKE_DIR or $DAGSTER_HOME/lake.")

    def get(self) -> Lake:
        return Lake(self.root or lake_root())


class LakeIOManager(dg.ConfigurableIOManager):
    """Stores asset values in the lake: DataFrames as Parquet, anything else as JSON.

    The dataset is the asset key path; the file is the partition key (``_`` when unpartitioned),
    so sensors and the backtest read the same files without going through Dagster.
    """

    root: str = Field(default="", description="Directory; empty means $AQI_LAKE_DIR or $DAGSTER_HOME/lake.")

    @property
    def lake(self) -> Lake:
        return Lake(self.root or lake_root())

    @staticmethod
    def _dataset(key: dg.AssetKey) -> str:
        return "/".join(key.path)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        dataset = self._dataset(context.asset_key)
        key = context.partition_key if context.has_partition_key else None
        if isinstance(obj, pd.DataFrame):
            path = self.lake.write_frame(dataset, key, obj)
        else:
            path = self.lake.write_json(dataset, key, obj)
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path))})

    def load_input(self, context: dg.InputContext) -> Any:
        dataset = self._dataset(context.asset_key)
        keys = context.asset_partition_keys if context.has_asset_partitions else [None]
        values = [self._load_one(dataset, key) for key in keys]
        if len(values) == 1:
            return values[0]
        if all(isinstance(v, pd.DataFrame) for v in values):
            return pd.concat(values, ignore_index=True)
        return dict(zip(keys, values))

    def _load_one(self, dataset: str, key: str | None) -> Any:
        if self.lake.has(dataset, key):
            return self.lake.read_frame(dataset, key)
        record = self.lake.read_json(dataset, key)
        if record is None:
            raise FileNotFoundError(
                f"{dataset}{'/' + key if key else ''} has not been materialized "
                f"(nothing at {self.lake.path(dataset, key)})"
            )
        return record


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "source": ObservationSourceResource(),
            "lake": LakeResource(),
            "io_manager": LakeIOManager(),
        }
    )
