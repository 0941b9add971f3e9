"""What the Dagster UI lists for each stage: the Catalog and the asset graph print an asset's description as
plain text (dagster-webserver 1.13 renders it in a text element, not through markdown), so it holds no
markdown; the labeling link is a bare URL (the asset page's markdown makes it a link) and a URL metadata
entry. Node parameters and fingerprint move to metadata.

Does not start `dagster dev` (labeling/test_dagster_dev_launch.py reads the description over GraphQL)."""

from __future__ import annotations

import dagster as dg

from beprepared_dagster import FilterBySize, HumanFilter, Load, Save, Workflow
from beprepared_dagster.orchestration.defs import build_definitions

MARKDOWN = ("**", "](", "`", "[")


def specs(tmp_path) -> dict[str, dg.AssetSpec]:
    workflow = Workflow(
        "dogs", Load(tmp_path) >> FilterBySize(min_edge=512) >> HumanFilter >> Save, workspace=tmp_path / "ws"
    )
    defs = build_definitions([workflow])
    return {spec.key.path[-1]: spec for spec in defs.resolve_all_asset_specs()}


def test_catalog_text_has_no_markdown_and_the_labeling_link_is_a_url(tmp_path):
    by_stage = specs(tmp_path)
    for name in ("load", "filter_by_size", "human_filter", "save"):
        text = by_stage[name].description or ""
        assert text and not any(m in text for m in MARKDOWN), (name, text)
    human = by_stage["human_filter"]
    assert "Label it at http://127.0.0.1:7860/?tab=dogs/human_filter" in human.description
    assert human.metadata["labeling_tab"] == dg.MetadataValue.url(
        "http://127.0.0.1:7860/?tab=dogs/human_filter"
    )
    size = by_stage["filter_by_size"]
    assert (
        size.metadata["parameters"].startswith("FilterBySize(")
        and "min_edge=512" in size.metadata["parameters"]
    )
    assert len(size.metadata["fingerprint"]) == 12
