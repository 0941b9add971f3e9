"""The `<workflow>/dataset_stats` asset: the numbers to check before training, in the Dagster UI.

It depends on the workflow's Save asset(s) rather than on the stage they export, because the statistics
describe the export as written: only kept images whose source still exists, captions as rendered (trigger,
tags, one per line), copies per caption. Save computes them while exporting (`export/stats.py`) and writes
`dataset_stats.html` and `.beprepared-stats.json` into the export atomically with everything else, so a
headless `workflow.run()` produces the report too. This asset reads that JSON back and shows it: counts, a
chart image, the bucket spread, the top tags and a link to the HTML report. With several Save stages every
key is prefixed with the stage's name (`save_kohya.images`).
"""

# No `from __future__ import annotations`: Dagster checks the `context` annotation at definition time.
from typing import Any

import dagster as dg

from beprepared_dagster.export.dataset import STATS_HTML, read_stats
from beprepared_dagster.export.report import chart_markdown, render_chart
from beprepared_dagster.nodes.save import SaveNode
from beprepared_dagster.orchestration.export import export_target
from beprepared_dagster.store.workspace import WorkspaceStore
from beprepared_dagster.workflow import Stage, Workflow

STATS_ASSET = "dataset_stats"


def stats_stages(workflow: Workflow) -> list[Stage]:
    """The Save stages that write statistics (`stats=True`)."""
    return [s for s in workflow.stages if isinstance(s.node, SaveNode) and s.node.stats]


def build_stats_asset(workflow: Workflow) -> dg.AssetsDefinition | None:
    """The workflow's `dataset_stats` asset, or None when no Save stage writes statistics."""
    sources = stats_stages(workflow)
    if not sources:
        return None
    store = WorkspaceStore(workflow.workspace_dir)
    names = ", ".join(s.name for s in sources)

    @dg.asset(
        key=dg.AssetKey([workflow.name, STATS_ASSET]),
        group_name=workflow.name,
        deps=[dg.AssetKey([workflow.name, s.name]) for s in sources],
        description=(
            f"Dataset statistics of the export written by {names}: image count, resolution and aspect "
            "histograms, SDXL/Flux buckets, tag frequency, caption length in words and CLIP tokens."
        ),
        kinds={"beprepared"},
        metadata={"workspace": str(workflow.workspace_dir)},
    )
    def _dataset_stats(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        metadata: dict[str, Any] = {}
        for stage in sources:
            target = export_target(store, stage.node)  # type: ignore[arg-type]
            stats = read_stats(target)
            if stats is None:
                raise dg.Failure(
                    f"{target} has no statistics yet: materialize {workflow.name}/{stage.name} first"
                )
            context.log.info(
                f"{stage.name}: {stats['images']} images, {stats['captions']} captions ({target})"
            )
            prefix = "" if len(sources) == 1 else f"{stage.name}."
            metadata.update({f"{prefix}{k}": v for k, v in stats_metadata(stats, target).items()})
        return dg.MaterializeResult(metadata=metadata)

    return _dataset_stats


def stats_metadata(stats: dict[str, Any], target: Any) -> dict[str, Any]:
    """Statistics → Dagster metadata: plain numbers, a chart, bucket and tag tables, the report's path."""
    tokens, words, tags = stats["clip_tokens"], stats["caption_words"], stats["tags"]
    buckets = stats["buckets"]
    return {
        "images": stats["images"],
        "image_files": stats["image_files"],
        "captions": stats["captions"],
        "uncaptioned_files": stats["image_files"] - stats["captioned_files"],
        "chart": dg.MetadataValue.md(chart_markdown(render_chart(stats))),
        "caption_words_median": words["median"] if words["count"] else 0,
        "clip_tokens_median": tokens["median"] if tokens["count"] else 0,
        "clip_tokens_max": tokens["max"] if tokens["count"] else 0,
        f"captions_over_{tokens['limit']}_clip_tokens": tokens["over_limit"],
        "tokenizer": dg.MetadataValue.text(tokens["tokenizer"]),
        "sdxl_buckets": dg.MetadataValue.json(dict(buckets["sdxl"]["counts"])),
        "sdxl_upscaled": buckets["sdxl"]["upscaled"],
        "flux_upscaled": buckets["flux"]["upscaled"],
        "distinct_tags": tags["distinct"],
        "top_tags": dg.MetadataValue.md(_tag_table(tags["top"][:20])),
        "report": dg.MetadataValue.path(str(target / STATS_HTML)),
    }


def _tag_table(top: list[list[Any]]) -> str:
    if not top:
        return "_no tags_"
    rows = [f"| {_md_escape(str(tag))} | {count} |" for tag, count in top]
    return "\n".join(["| tag | images |", "|---|---|", *rows])


def _md_escape(text: str) -> str:
    """Tags such as `_tag_` or `(series)` shown literally, not as Markdown."""
    return "".join("\\" + c if c in "\\`*_{}[]()<>#+-.!|~" else c for c in text)
