"""`index.html`: a self-contained gallery of the export (no external assets, every value escaped)."""

from __future__ import annotations

import html
from urllib.parse import quote

from beprepared_dagster.export.entries import Entry

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1rem;background:#111;color:#eee}
a{color:#8cf}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:1rem}
figure{margin:0;background:#1d1d1d;border-radius:6px;overflow:hidden}
img{width:100%;height:220px;object-fit:contain;background:#000;display:block}
figcaption{padding:.5rem;font-size:.85rem;word-break:break-word}
details{color:#aaa}pre{white-space:pre-wrap;font-size:.75rem}
"""


def render_gallery(title: str, entries: list[Entry], stats_page: str | None = None) -> str:
    """One card per exported image: the image, its caption(s) and its public properties."""
    cards = []
    for entry in entries:
        link = quote(entry.image)
        captions = "<br>".join(html.escape(c) for c in entry.captions)
        cards.append(
            "<figure>"
            f'<a href="{link}"><img loading="lazy" src="{link}" alt=""></a>'
            f"<figcaption><strong>{html.escape(entry.image)}</strong><br>{captions}"
            f"<details><summary>properties</summary><pre>"
            f"{html.escape(entry.props_json)}</pre>"
            "</details></figcaption></figure>"
        )
    stats_link = f' · <a href="{quote(stats_page)}">dataset statistics</a>' if stats_page else ""
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{len(entries)} images{stats_link}</p>"
        f"<div class='grid'>{''.join(cards)}</div></body></html>\n"
    )
