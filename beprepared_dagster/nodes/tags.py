"""Tag editing: AddTags, RemoveTags, RewriteTags.

Tags are an ordered list without repeats (first occurrence wins), so they serialize to JSON sidecars and
combine with HumanTag's lists. The original stored a set (which broke `Save(sidecars=True)`), called
`.union` on HumanTag's lists, and its RemoveTags/RewriteTags always raised.
"""

from __future__ import annotations

from typing import Any, ClassVar

from beprepared_dagster.nodes.base import Image, PropertyNode


def _tag_list(value: Any, param: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple | set | frozenset) or not items:
        raise ValueError(f"{param} must be a tag or a non-empty list of tags, got {value!r}")
    bad = [t for t in items if not isinstance(t, str) or not t.strip()]
    if bad:
        raise ValueError(f"{param}: every tag must be a non-empty string, got {bad[0]!r}")
    # A set has no order of its own: sort it so the result (and the fingerprint) is stable.
    ordered = sorted(items) if isinstance(items, set | frozenset) else items
    return list(dict.fromkeys(t.strip() for t in ordered))


def _check_prop(target_prop: Any) -> None:
    if not isinstance(target_prop, str) or not target_prop or target_prop.startswith("_"):
        raise ValueError(f"target_prop must be a public property name, got {target_prop!r}")


def current_tags(image: Image, prop: str) -> list[str]:
    """The image's tags as a list, whatever an upstream node stored (None, one string, a list)."""
    value = image.get(prop)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [str(t) for t in value]
    raise TypeError(f"property {prop!r} holds {type(value).__name__} {value!r}, not a list of tags")


class _TagNode(PropertyNode):
    """Shared plumbing: the tags live in `target_prop`, which is all the result depends on."""

    properties_only: ClassVar[bool] = True

    @property
    def reads(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.params["target_prop"],)

    def edit(self, tags: list[str]) -> list[str]:
        raise NotImplementedError

    def compute(self, image: Image) -> dict[str, Any]:
        prop = self.params["target_prop"]
        value = image.get(prop)
        after = list(dict.fromkeys(self.edit(current_tags(image, prop))))
        if after == value or (value is None and not after):
            return {}  # unchanged: no new property, so nothing downstream goes stale
        return {prop: after}


class AddTags(_TagNode):
    """Add tags to each image's tag list (existing tags first, no repeats).

    Args:
        tags: a tag or a list of tags.
        target_prop: the property holding the tag list (HumanTag's `target_prop`).
    """

    description: ClassVar[str] = "Images with tags {tags} added to {target_prop}."
    writes: ClassVar[tuple[str, ...]] = ("{target_prop}",)

    def __init__(self, tags: str | list[str], target_prop: str = "tags") -> None:
        self.tags = self.params["tags"] = _tag_list(tags, "tags")
        _check_prop(target_prop)

    def edit(self, tags: list[str]) -> list[str]:
        return tags + self.tags


class RemoveTags(_TagNode):
    """Remove tags from each image's tag list; images without tags are left alone.

    Args:
        tags: a tag or a list of tags.
        target_prop: the property holding the tag list.
    """

    description: ClassVar[str] = "Images with tags {tags} removed from {target_prop}."
    writes: ClassVar[tuple[str, ...]] = ("{target_prop}",)

    def __init__(self, tags: str | list[str], target_prop: str = "tags") -> None:
        self.tags = self.params["tags"] = _tag_list(tags, "tags")
        _check_prop(target_prop)

    def edit(self, tags: list[str]) -> list[str]:
        unwanted = set(self.tags)
        return [t for t in tags if t not in unwanted]


class RewriteTags(_TagNode):
    """Rename tags through `mapping` (`{"old": "new"}`) in each image's tag list.

    One pass, not transitive: with `{"a": "b", "b": "c"}`, "a" becomes "b" and "b" becomes "c". When a
    renamed tag is already present it appears once, at its first position.

    Args:
        mapping: old tag → new tag.
        target_prop: the property holding the tag list.
    """

    description: ClassVar[str] = "Images with tags renamed in {target_prop}."
    writes: ClassVar[tuple[str, ...]] = ("{target_prop}",)

    def __init__(self, mapping: dict[str, str], target_prop: str = "tags") -> None:
        if not isinstance(mapping, dict) or not mapping:
            raise ValueError(f"mapping must be a non-empty dict of old tag → new tag, got {mapping!r}")
        for old, new in mapping.items():
            if not isinstance(old, str) or not old.strip() or not isinstance(new, str) or not new.strip():
                raise ValueError(f"mapping: tags must be non-empty strings, got {old!r} → {new!r}")
        self.mapping = self.params["mapping"] = {k.strip(): v.strip() for k, v in mapping.items()}
        _check_prop(target_prop)

    def edit(self, tags: list[str]) -> list[str]:
        return [self.mapping.get(t, t) for t in tags]
