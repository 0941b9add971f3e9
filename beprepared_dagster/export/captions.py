"""Caption text as trainers read it, rendered at export time from the raw properties the store keeps.

- A caption property holds one caption (a string) or several (a list of strings, e.g. variations).
- Tags stay canonical in the store (`hatsune_miku_(vocaloid)`); on export they are rendered per the booru /
  WD14 convention: comma-space separated, underscores → spaces except in tags of three characters or fewer
  (kaomoji such as `^_^`, as sd-scripts' `--remove_underscore` does), parentheses escaped only when asked and
  never twice.
- A trigger word goes first (kept out of shuffling with `keep_tokens=1`), or replaces a literal `[trigger]`
  (ai-toolkit's placeholder).
- A text caption file holds one caption per line, so line breaks inside one caption become spaces: several
  trainers read each line as an alternative caption.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

TRIGGER_PLACEHOLDER = "[trigger]"
_UNESCAPED_PAREN = re.compile(r"(?<!\\)([()])")


@dataclass(frozen=True)
class CaptionSpec:
    """How an export turns an image's properties into caption texts (see the Save nodes' parameters)."""

    enabled: bool = True
    caption_prop: str | None = "caption"
    tags_prop: str | None = None
    tag_spaces: bool = True
    escape_parens: bool = False
    first_tags: tuple[str, ...] = ()
    trigger: str | None = None
    multi_caption: str = "files"

    @classmethod
    def from_node(cls, node: Any) -> CaptionSpec:
        """The spec of a Save node (any node with the shared caption parameters)."""
        return cls(
            enabled=node.captions,
            caption_prop=node.caption_prop,
            tags_prop=node.tags_prop,
            tag_spaces=node.tag_spaces,
            escape_parens=node.escape_parens,
            first_tags=tuple(node.first_tags),
            trigger=node.trigger,
            multi_caption=node.multi_caption,
        )


def raw_captions(props: Mapping[str, Any], prop: str | None) -> list[str]:
    """The caption texts a property holds: a string, or a list of strings; empty ones dropped."""
    if prop is None:
        return []
    value = props.get(prop)
    values = value if isinstance(value, list | tuple) else [value]
    return [str(v).strip() for v in values if v is not None and str(v).strip()]


def raw_tags(props: Mapping[str, Any], prop: str | None) -> list[str]:
    """Tags as stored: a list of strings, a `{tag: score}` mapping (highest score first) or a comma list."""
    value = props.get(prop) if prop else None
    if not value:
        return []
    if isinstance(value, Mapping):
        ordered = sorted(value.items(), key=lambda kv: -_score(kv[1]))
        tags: Iterable[Any] = [tag for tag, _ in ordered]
    elif isinstance(value, str):
        tags = value.split(",")
    else:
        tags = [t[0] if isinstance(t, list | tuple) and t else t for t in value]
    return list(dict.fromkeys(str(t).strip() for t in tags if t is not None and str(t).strip()))


def _score(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def render_tag(tag: str, spaces: bool = True, escape_parens: bool = False) -> str:
    """One tag for a training caption: `long_hair` → `long hair`, `^_^` kept, `(` → `\\(` when asked."""
    text = tag.strip()
    if spaces and len(text) > 3:
        text = text.replace("_", " ")
    if escape_parens:
        text = _UNESCAPED_PAREN.sub(r"\\\1", text)  # an already escaped `\(` stays as it is
    return text


def render_tags(tags: list[str], spec: CaptionSpec) -> str:
    """The tag list as one comma-separated string, `first_tags` moved to the front in their given order."""
    first = {_key(t): i for i, t in enumerate(spec.first_tags)}
    ordered = sorted(tags, key=lambda t: first.get(_key(t), len(first)))  # stable: others keep their order
    return ", ".join(render_tag(t, spec.tag_spaces, spec.escape_parens) for t in ordered)


def _key(tag: str) -> str:
    return tag.strip().lower().replace("_", " ")


def one_line(text: str) -> str:
    """A caption on one line: every run of whitespace (line breaks included) becomes one space."""
    return " ".join(text.split())


def apply_trigger(text: str, trigger: str | None) -> str:
    """Replace `[trigger]`, or put the trigger first unless the caption already starts with it."""
    if not trigger:
        return text
    if TRIGGER_PLACEHOLDER in text:
        return text.replace(TRIGGER_PLACEHOLDER, trigger)
    if not text:
        return trigger
    if text == trigger or text.startswith(f"{trigger},") or text.startswith(f"{trigger} "):
        return text
    return f"{trigger}, {text}"


def render_captions(props: Mapping[str, Any], spec: CaptionSpec) -> list[str]:
    """Every caption of one row, rendered: `<tags>, <caption>` per caption text, trigger applied."""
    if not spec.enabled:
        return []
    tags = raw_tags(props, spec.tags_prop)
    tag_text = render_tags(tags, spec) if tags else ""
    texts = raw_captions(props, spec.caption_prop) or [""]
    rendered = []
    for text in texts:
        combined = ", ".join(part for part in (tag_text, one_line(text)) if part)
        combined = apply_trigger(combined, spec.trigger)
        if combined:
            rendered.append(combined)
    return list(dict.fromkeys(rendered))


def caption_file_text(captions: list[str]) -> str:
    """A caption file: one caption per line, no trailing newline (the original wrote none)."""
    return "\n".join(captions)
