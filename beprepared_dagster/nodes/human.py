"""Human stages: a person keeps/rejects, tags or captions each image in the labeling app.

Labels live in the label journal keyed by image identity + `domain` (+ kind), so every stage of a domain
shares them and inserting a conversion before a human stage orphans nothing. Journal values:

| kind      | value                                                   |
|-----------|---------------------------------------------------------|
| `filter`  | `{"keep": true}` / `{"keep": false}`                    |
| `tag`     | `{"tags": ["a", "b"], "rejected": false, "version": 1}` |
| `caption` | `{"caption": "text", "version": 1}`                     |

HumanRank (kind `rank`, one entry per comparison) lives in `nodes/rank.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from beprepared_dagster.nodes.base import HumanNode, Image, Outcome


def _check_domain(domain: Any) -> None:
    if not isinstance(domain, str) or not domain.strip() or len(domain) > 200:
        raise ValueError(f"domain must be a non-empty string of at most 200 characters, not {domain!r}")


class HumanFilter(HumanNode):
    """A person keeps or rejects each image in the labeling app (↑/W keep, ↓/S reject, Z undo)."""

    kind = "filter"
    description = "A person keeps or rejects each image in the labeling app (domain `{domain}`)."
    writes = ("passed_human_filter",)

    def __init__(self, domain: str = "default", skip_ui: bool = False) -> None:
        _check_domain(domain)

    def outcome(self, image: Image, label: Mapping[str, Any] | None) -> Outcome | None:
        if label is None:
            return Outcome.keep() if self.params["skip_ui"] else None
        if label.get("keep"):
            return Outcome.keep(passed_human_filter=True)
        return Outcome.reject(f"rejected by a person (domain {self.params['domain']})")


def tag_rows(tags: Any) -> list[list[str]]:
    """`["a", "b"]` → one row; `[["a", "b"], ["c"]]` → rows, as the UI lays them out."""
    if isinstance(tags, str) or not isinstance(tags, (list, tuple)) or not tags:
        raise ValueError(f"tags must be a non-empty list of tags or of rows of tags, not {tags!r}")
    rows = [list(row) for row in tags] if all(isinstance(t, (list, tuple)) for t in tags) else [list(tags)]
    flat = [t for row in rows for t in row]
    bad = [t for t in flat if not isinstance(t, str) or not t.strip()]
    if bad or not flat:
        raise ValueError(f"every tag must be a non-empty string; got {bad[:3] or tags!r}")
    duplicates = sorted({t for t in flat if flat.count(t) > 1})
    if duplicates:
        raise ValueError(f"tag {duplicates[0]!r} appears twice")
    return rows


class HumanTag(HumanNode):
    """A person toggles tags per image (number keys 1…0, or a click); a reject toggle drops the image.

    Tags already in `target_prop` from upstream nodes that are not part of this tag set are kept, in front.

    Args:
        tags: the tags offered: a list (`["labrador", "poodle"]`) or rows of tags (`[["a", "b"], ["c"]]`).
        version: bump it to present every image again, with its earlier tags preselected.
        target_prop: the property that receives the tag list.
    """

    kind = "tag"
    description = "A person toggles tags ({names}) per image; a reject toggle drops the image."
    writes = ("{target_prop}",)

    def __init__(
        self,
        tags: list[str] | list[list[str]] | None = None,
        domain: str = "default",
        version: int = 1,
        target_prop: str = "tags",
        skip_ui: bool = False,
    ) -> None:
        _check_domain(domain)
        self.rows = tag_rows(tags)
        self.all_tags = [t for row in self.rows for t in row]
        if not isinstance(version, int) or isinstance(version, bool):
            raise ValueError(f"version must be an integer, not {version!r}")

    def is_labeled(self, label: Mapping[str, Any] | None) -> bool:
        return label is not None and label.get("version") == self.params["version"]

    def outcome(self, image: Image, label: Mapping[str, Any] | None) -> Outcome | None:
        if label is None or (not self.is_labeled(label) and not self.params["skip_ui"]):
            return Outcome.keep() if self.params["skip_ui"] else None
        if label.get("rejected"):
            return Outcome.reject(f"rejected while tagging (domain {self.params['domain']})")
        chosen = [t for t in self.all_tags if t in set(label.get("tags") or [])]
        # Tags from upstream (AddTags, a tagger) that are not part of this tag set are kept, in front.
        existing = image.get(self.params["target_prop"]) or []
        if isinstance(existing, str):
            existing = [existing]
        kept = [t for t in existing if t not in self.all_tags]
        return Outcome.keep(**{self.params["target_prop"]: list(dict.fromkeys(kept + chosen))})


class HumanCaption(HumanNode):
    """A person writes or corrects the caption of each image; an emptied caption means "use the source".

    Args:
        source_prop: the property whose value the person starts from (e.g. a model's caption).
        target_prop: the property that receives the caption.
        version: bump it to present every image again.
    """

    kind = "caption"
    description = (
        "A person writes or corrects the caption of each image (from `{source_prop}` into `{target_prop}`)."
    )
    writes = ("{target_prop}",)

    def __init__(
        self,
        source_prop: str = "caption",
        target_prop: str = "caption",
        domain: str = "default",
        version: int = 1,
        skip_ui: bool = False,
    ) -> None:
        _check_domain(domain)
        if not isinstance(version, int) or isinstance(version, bool):
            raise ValueError(f"version must be an integer, not {version!r}")

    def is_labeled(self, label: Mapping[str, Any] | None) -> bool:
        return label is not None and label.get("version") == self.params["version"]

    def outcome(self, image: Image, label: Mapping[str, Any] | None) -> Outcome | None:
        source = image.get(self.params["source_prop"])
        if not self.is_labeled(label):
            if not self.params["skip_ui"]:
                return None
            edited = (label or {}).get("caption")
            return Outcome.keep(
                **{self.params["target_prop"]: edited.strip() if edited and edited.strip() else source}
            )
        text = str(label.get("caption") or "").strip()  # type: ignore[union-attr]
        # An emptied caption falls back to the source caption, as in the original.
        return Outcome.keep(**{self.params["target_prop"]: text or source})
