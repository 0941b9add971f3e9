"""`index.html`: a self-contained gallery of the export (no external assets, every value escaped)."""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import quote

from beprepared_dagster.store.stages import Row

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1rem;background:#111;color:#eee}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:1rem}
figure{margin:0;background:#1d1d1d;border-radius:6px;overflow:hidden}
img{width:100%;height:220px;object-fit:contain;background:#000;display:block}
figcaption{padding:.5rem;font-size:.85rem;word-break:break-word}
details{color:#aaa}pre{white-space:pre-wrap;font-size:.75rem}
"""


def render_gallery(title: str, rows: list[Row], planned: list[Any], caption_ext: str) -> str:
    images = [p for p in planned if p.object_id is not None]
    by_object: dict[str, list[Any]] = {}
    for item in images:
        by_object.setdefault(item.object_id, []).append(item)
    cards = []
    ordered = sorted(rows, key=lambda r: (r.props.get("original_path", ""), r.image_id, r.seq))
    for row, item in zip(ordered, images, strict=True):
        props = {k: v for k, v in sorted(row.props.items()) if not k.startswith("_")}
        caption = props.get("caption") or ""
        cards.append(
            "<figure>"
            f'<a href="{quote(item.name)}"><img loading="lazy" src="{quote(item.name)}" alt=""></a>'
            f"<figcaption><strong>{html.escape(item.name)}</strong><br>{html.escape(str(caption))}"
            f"<details><summary>properties</summary><pre>{html.escape(json.dumps(props, indent=1, ensure_ascii=False))}</pre>"
            "</details></figcaption></figure>"
        )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{len(rows)} images</p>"
        f"<div class='grid'>{''.join(cards)}</div></body></html>\n"
    )
