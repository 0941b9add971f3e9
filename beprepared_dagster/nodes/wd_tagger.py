"""WDTagger: booru-style tags from the SmilingWolf WD taggers (ONNX), with kohya's tagging options."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from beprepared_dagster.models.api import ItemError, ResolvedModel
from beprepared_dagster.nodes.base import Image, Outcome
from beprepared_dagster.nodes.onnx_model import OnnxModelNode
from beprepared_dagster.nodes.tags import current_tags


def _tags_param(value: Any, name: str) -> list[str]:
    """A tag list from a list or a comma-separated string (kohya's form); empty entries dropped."""
    items = value.split(",") if isinstance(value, str) else value
    if items is None:
        return []
    if not isinstance(items, list | tuple) or not all(isinstance(t, str) for t in items):
        raise ValueError(f"{name} must be a list of tags or a comma-separated string, got {value!r}")
    return list(dict.fromkeys(t.strip() for t in items if t.strip()))


def _key(tag: str) -> str:
    """How tags are compared: case and underscore-vs-space do not matter (`long_hair` is `Long hair`)."""
    return tag.strip().lower().replace("_", " ")


def _threshold(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number between 0 and 1, got {value!r}")
    return float(value)


class WDTagger(OnnxModelNode):
    """Tag each image with a SmilingWolf WD tagger (`model.onnx` + `selected_tags.csv`, run by onnxruntime).

    Writes `target_prop` as an ordered tag list without repeats (what `AddTags`, `RewriteTags`, `HumanTag`
    and the exports' `tags_prop=` read), `wd_scores` (`{tag: probability}` of the tags written), `wd_rating`
    (the most likely of general / sensitive / questionable / explicit), `wd_ratings` (all four) and
    `tagger_model`. Tags stay in booru form (`long_hair`) unless `remove_underscore=True`; the exports turn
    underscores into spaces themselves (`tag_spaces=True`).

    Order, as in kohya's `tag_images_by_wd14_tagger.py`: general tags in the tag list's order, then character
    tags (first with `character_tags_first`), the rating first or last when asked, and `always_first_tags`
    moved to the front in the order given.

    Args:
        model: a hub id or a folder holding `model.onnx` and `selected_tags.csv` (default
            `SmilingWolf/wd-swinv2-tagger-v3`; also wd-vit-tagger-v3, wd-convnext-tagger-v3,
            wd-vit-large-tagger-v3, wd-eva02-large-tagger-v3 and the v2 `wd-v1-4-*` taggers).
        general_threshold: minimum probability of a general tag.
        character_threshold: minimum probability of a character tag.
        target_prop: the property that receives the tag list.
        undesired_tags: tags never written (a list, or kohya's comma-separated string).
        remove_underscore: write `long hair` instead of `long_hair` (tags of three characters or fewer, such
            as `^_^`, are kept as they are).
        character_tags_first: character tags before general tags.
        character_tag_expand: `name_(series)` becomes two tags, `name` and `series`.
        always_first_tags: tags moved to the front when present (e.g. `["1girl", "1boy"]`).
        use_rating_tags: put the most likely rating tag first.
        use_rating_tags_as_last_tag: put it last instead.
        append_tags: keep the tags already in `target_prop` first and add the new ones after them.
        batch_size: images per onnxruntime call (halved on out-of-memory).
        revision: a branch, tag or commit of a hub id.
        devices: e.g. `["cuda:0"]`; default every visible GPU, else the CPU. The GPU needs `onnxruntime-gpu`.
    """

    backend: ClassVar[str] = "beprepared_dagster.models.backends.onnx_wd_tagger:WDTaggerBackend"
    family: ClassVar[str] = "WD tagger"
    default_model: ClassVar[str] = "SmilingWolf/wd-swinv2-tagger-v3"
    required_files: ClassVar[tuple[str, ...]] = ("model.onnx", "selected_tags.csv")
    allow_patterns: ClassVar[tuple[str, ...] | None] = ("model.onnx", "selected_tags.csv")
    description: ClassVar[str] = "Images tagged by a WD tagger (ONNX) into {target_prop}."
    writes: ClassVar[tuple[str, ...]] = (
        "{target_prop}",
        "wd_scores",
        "wd_rating",
        "wd_ratings",
        "tagger_model",
    )
    gpu: ClassVar[str] = "optional: fast on the CPU; CUDA with onnxruntime-gpu"

    def __init__(
        self,
        model: str | None = None,
        general_threshold: float = 0.35,
        character_threshold: float = 0.85,
        target_prop: str = "tags",
        undesired_tags: Sequence[str] | str = (),
        remove_underscore: bool = False,
        character_tags_first: bool = False,
        character_tag_expand: bool = False,
        always_first_tags: Sequence[str] | str = (),
        use_rating_tags: bool = False,
        use_rating_tags_as_last_tag: bool = False,
        append_tags: bool = False,
        batch_size: int | None = None,
        revision: str | None = None,
        devices: Sequence[str] | None = None,
    ) -> None:
        if not isinstance(target_prop, str) or not target_prop or target_prop.startswith("_"):
            raise ValueError(f"target_prop must be a public property name, got {target_prop!r}")
        flags = {
            "remove_underscore": remove_underscore,
            "character_tags_first": character_tags_first,
            "character_tag_expand": character_tag_expand,
            "use_rating_tags": use_rating_tags,
            "use_rating_tags_as_last_tag": use_rating_tags_as_last_tag,
            "append_tags": append_tags,
        }
        for name, value in flags.items():
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be True or False, got {value!r}")
        if use_rating_tags and use_rating_tags_as_last_tag:
            raise ValueError("use_rating_tags and use_rating_tags_as_last_tag: choose one (first or last)")
        self.general_threshold = _threshold(general_threshold, "general_threshold")
        self.character_threshold = _threshold(character_threshold, "character_threshold")
        self.target_prop, self.flags = target_prop, flags
        self.undesired = {_key(t) for t in _tags_param(undesired_tags, "undesired_tags")}
        self.always_first = _tags_param(always_first_tags, "always_first_tags")
        self.params["undesired_tags"] = sorted(self.undesired)  # one cache key however they were written
        self.params["always_first_tags"] = self.always_first
        self._setup_model(model, revision, batch_size, devices, "float32", None)

    @property
    def reads(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("objectid", self.target_prop) if self.flags["append_tags"] else ("objectid",)

    def backend_args(self) -> dict[str, Any]:
        return {
            "general_threshold": self.general_threshold,
            "character_threshold": self.character_threshold,
        }

    def outcome(self, image: Image, result: Any, model: ResolvedModel) -> Outcome:
        if isinstance(result, ItemError):
            return Outcome.reject(f"bad image: {result.reason}" if result.bad_image else result.reason)
        ratings: dict[str, float] = result["ratings"]
        rating = max(ratings, key=ratings.__getitem__) if ratings else None
        scores: dict[str, float] = {}
        general = self._names(result["general"], scores)
        character = self._names(result["character"], scores, expand=self.flags["character_tag_expand"])
        tags = character + general if self.flags["character_tags_first"] else general + character
        if rating is not None and (
            self.flags["use_rating_tags"] or self.flags["use_rating_tags_as_last_tag"]
        ):
            named = self._names([[rating, ratings[rating]]], scores)
            tags = named + tags if self.flags["use_rating_tags"] else tags + named
        tags = self._first(tags)
        if self.flags["append_tags"]:
            tags = current_tags(image, self.target_prop) + tags
        tags = list(dict.fromkeys(tags))
        return Outcome.keep(
            **{
                self.target_prop: tags,
                "wd_scores": {t: scores[t] for t in tags if t in scores},
                "wd_rating": rating,
                "wd_ratings": {name: round(p, 4) for name, p in ratings.items()},
                "tagger_model": model.label,
            }
        )

    def _names(self, found: list[list[Any]], scores: dict[str, float], expand: bool = False) -> list[str]:
        """Tag names as written (expanded, underscores removed), undesired ones dropped; scores recorded."""
        names = []
        for raw, p in found:
            for tag in _expand(raw) if expand else [raw]:
                if self.flags["remove_underscore"] and len(tag) > 3:
                    tag = tag.replace("_", " ")
                if _key(tag) in self.undesired or _key(raw) in self.undesired:
                    continue
                names.append(tag)
                scores.setdefault(tag, round(float(p), 4))
        return names

    def _first(self, tags: list[str]) -> list[str]:
        by_key = {_key(t): t for t in reversed(tags)}
        first = [by_key[_key(t)] for t in self.always_first if _key(t) in by_key]
        return first + [t for t in tags if t not in first]


def _expand(tag: str) -> list[str]:
    """`name_(series)` → `name`, `series`; `name_(costume)_(series)` → `name_(costume)`, `series` (kohya's rule)."""
    if not tag.endswith(")") or "(" not in tag:
        return [tag]
    head, _, series = tag.rpartition("(")
    head = head[:-1] if head.endswith("_") else head
    return [t for t in (head, series[:-1]) if t]
