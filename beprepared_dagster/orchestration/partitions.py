"""One dynamic partitions definition per workflow: a partition per image (SHA-256 of the source file)."""

from __future__ import annotations

import dagster as dg

from beprepared_dagster.workflow import Workflow

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def partitions_name(workflow: Workflow) -> str:
    return f"{workflow.name}_images"


def partitions_def(workflow: Workflow) -> dg.DynamicPartitionsDefinition:
    return dg.DynamicPartitionsDefinition(name=partitions_name(workflow))


def range_tags(first: str, last: str) -> dict[str, str]:
    return {RANGE_START: first, RANGE_END: last}


def contiguous_ranges(all_keys: list[str], wanted: set[str]) -> list[tuple[str, str]]:
    """Split `wanted` into runs of consecutive keys in insertion order (one Dagster run each)."""
    ranges: list[tuple[str, str]] = []
    start = prev = None
    for key in all_keys:
        if key in wanted:
            if start is None:
                start = key
            prev = key
        elif start is not None:
            ranges.append((start, prev))  # type: ignore[arg-type]
            start = None
    if start is not None:
        ranges.append((start, prev))  # type: ignore[arg-type]
    return ranges
