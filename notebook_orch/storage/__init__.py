"""Value storage: where asset values live on disk and how they get there safely.

``ValueStore`` keeps ``<root>/<asset>/<partition>/<version_id>/value.<ext>`` plus a ``_SUCCESS`` marker, writing
through a temporary folder so nothing half-written is ever visible. ``HandlerRegistry`` holds the formats:
parquet for pandas DataFrames, json for small JSON-able values, pickle only when asked for (``--io pickle``).
pandas and pyarrow are imported on first use, not by ``import notebook_orch.storage``.
"""

from notebook_orch.storage._combine import combine_partitions
from notebook_orch.storage._handlers import (
    JSON_MAX_BYTES,
    JsonHandler,
    ParquetHandler,
    PickleHandler,
    describe_value,
    json_problem,
)
from notebook_orch.storage._inventory import scan_values
from notebook_orch.storage._registry import ENTRY_POINT_GROUP, HandlerRegistry, choose_handler, default_registry
from notebook_orch.storage._store import SUCCESS, TEMP_PREFIX, ValueStore
from notebook_orch.storage._types import PublishedValue, StagedValue, ValueHandler, ValueMetadata

__all__ = [
    "ENTRY_POINT_GROUP",
    "JSON_MAX_BYTES",
    "SUCCESS",
    "TEMP_PREFIX",
    "HandlerRegistry",
    "JsonHandler",
    "ParquetHandler",
    "PickleHandler",
    "PublishedValue",
    "StagedValue",
    "ValueHandler",
    "ValueMetadata",
    "ValueStore",
    "choose_handler",
    "combine_partitions",
    "default_registry",
    "describe_value",
    "json_problem",
    "scan_values",
]
