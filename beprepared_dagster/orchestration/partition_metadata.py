"""Each partition's own metadata in one step.

Dagster's public `context.add_asset_metadata(meta, partition_key=k)` lists the dynamic partitions of the
whole range and copies every metadata entry added so far on each call: quadratic in a run's size (minutes at
5,000 images). This sets all of them with one update of the step's metadata accumulator, the structure that
call fills (dagster 1.13: `_step_execution_context._metadata_accumulator`), and falls back to the public call
when those internals change (`test_partition_metadata.py` says so).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg


def add_partition_metadata(
    context: dg.AssetExecutionContext, per_partition: Mapping[str, Mapping[str, Any]]
) -> bool:
    """Attach `per_partition[key]` to that partition's materialization; True when the fast path was used."""
    try:
        from dagster._core.execution.context.metadata_logging import (
            AssetMetadataHandle,
            OutputMetadataAccumulator,
        )

        step = context.op_execution_context._step_execution_context
        current = step._metadata_accumulator.per_output_metadata
    except (ImportError, AttributeError):
        for key, meta in per_partition.items():
            context.add_asset_metadata(dict(meta), partition_key=key)
        return False
    asset_key = context.assets_def.key
    merged = dict(current)
    for key, meta in per_partition.items():
        handle = AssetMetadataHandle(asset_key=asset_key, partition_key=key)
        merged[handle] = {**merged.get(handle, {}), **meta}
    step._metadata_accumulator = OutputMetadataAccumulator(per_output_metadata=merged)
    return True


def event_order(context: dg.AssetExecutionContext, keys: list[str]) -> list[str]:
    """The order Dagster will store this run's materializations in: its output context's partition subset
    (a set), rebuilt the same way. The last one becomes the asset's latest materialization."""
    try:
        from dagster._core.definitions.partitions.context import partition_loading_context

        parts = context.assets_def.partitions_def
        with partition_loading_context(dynamic_partitions_store=context.instance):
            subset = parts.empty_subset().with_partition_key_range(parts, context.partition_key_range)
        return list(subset.get_partition_keys())
    except (ImportError, AttributeError, TypeError):
        return keys
