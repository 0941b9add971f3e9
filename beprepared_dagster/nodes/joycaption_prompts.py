"""JoyCaption's prompt vocabulary. The models were trained on these exact sentences (from the JoyCaption
README and the original tool), so they are data here: a caption type, a length (`'any'`, a word count, or a
length word) and optional extra sentences pick one.

Alpha Two and Beta One share the vocabulary; Alpha One has its own, smaller one.
"""

from __future__ import annotations

LENGTH_WORDS = ("very short", "short", "medium-length", "long", "very long")

# caption type → (no length, "{word_count}" words, "{length}" word)
TWO_TEMPLATES: dict[str, tuple[str, str, str]] = {
    "descriptive": (
        "Write a descriptive caption for this image in a formal tone.",
        "Write a descriptive caption for this image in a formal tone within {word_count} words.",
        "Write a {length} descriptive caption for this image in a formal tone.",
    ),
    "descriptive_informal": (
        "Write a descriptive caption for this image in a casual tone.",
        "Write a descriptive caption for this image in a casual tone within {word_count} words.",
        "Write a {length} descriptive caption for this image in a casual tone.",
    ),
    "training_prompt": (
        "Write a stable diffusion prompt for this image.",
        "Write a stable diffusion prompt for this image within {word_count} words.",
        "Write a {length} stable diffusion prompt for this image.",
    ),
    "midjourney": (
        "Write a MidJourney prompt for this image.",
        "Write a MidJourney prompt for this image within {word_count} words.",
        "Write a {length} MidJourney prompt for this image.",
    ),
    "booru_tag_list": (
        "Write a list of Booru tags for this image.",
        "Write a list of Booru tags for this image within {word_count} words.",
        "Write a {length} list of Booru tags for this image.",
    ),
    "booru_like_tag_list": (
        "Write a list of Booru-like tags for this image.",
        "Write a list of Booru-like tags for this image within {word_count} words.",
        "Write a {length} list of Booru-like tags for this image.",
    ),
    "art_critic": (
        "Analyze this image like an art critic would with information about its composition, style, "
        "symbolism, the use of color, light, any artistic movement it might belong to, etc.",
        "Analyze this image like an art critic would with information about its composition, style, "
        "symbolism, the use of color, light, any artistic movement it might belong to, etc. Keep it within "
        "{word_count} words.",
        "Analyze this image like an art critic would with information about its composition, style, "
        "symbolism, the use of color, light, any artistic movement it might belong to, etc. Keep it {length}.",
    ),
    "product_listing": (
        "Write a caption for this image as though it were a product listing.",
        "Write a caption for this image as though it were a product listing. Keep it under {word_count} words.",
        "Write a {length} caption for this image as though it were a product listing.",
    ),
    "social_media_post": (
        "Write a caption for this image as if it were being used for a social media post.",
        "Write a caption for this image as if it were being used for a social media post. Limit the caption "
        "to {word_count} words.",
        "Write a {length} caption for this image as if it were being used for a social media post.",
    ),
}
TWO_TYPES = tuple(TWO_TEMPLATES)
BETA_ONE_TYPES = TWO_TYPES

EXTRA_OPTIONS = (
    "If there is a person/character in the image you must refer to them as {name}.",
    "Do NOT include information about people/characters that cannot be changed (like ethnicity, gender, etc), "
    "but do still include changeable attributes (like hair style).",
    "Include information about lighting.",
    "Include information about camera angle.",
    "Include information about whether there is a watermark or not.",
    "Include information about whether there are JPEG artifacts or not.",
    "If it is a photo you MUST include information about what camera was likely used and details such as "
    "aperture, shutter speed, ISO, etc.",
    "Do NOT include anything sexual; keep it PG.",
    "Do NOT mention the image's resolution.",
    "You MUST include information about the subjective aesthetic quality of the image from low to very high.",
    "Include information on the image's composition style, such as leading lines, rule of thirds, or symmetry.",
    "Do NOT mention any text that is in the image.",
    "Specify the depth of field and whether the background is in focus or blurred.",
    "If applicable, mention the likely use of artificial or natural lighting sources.",
    "Do NOT use any ambiguous language.",
    "Include whether the image is sfw, suggestive, or nsfw.",
    "ONLY describe the most important elements of the image.",
)
BETA_ONE_EXTRA_OPTIONS = EXTRA_OPTIONS

# Alpha One: (type, tone) → the three forms; booru and stable_diffusion are always formal.
_ONE_BASE = {
    ("descriptive", "formal"): "Write a descriptive caption for this image in a formal tone",
    ("descriptive", "informal"): "Write a descriptive caption for this image in a casual tone",
    ("stable_diffusion", "formal"): "Write a stable diffusion prompt for this image",
    ("booru", "formal"): "Write a list of Booru tags for this image",
}
ONE_TYPES = ("descriptive", "stable_diffusion", "booru")
ONE_TONES = ("formal", "informal")


def _length_form(caption_length: str | int, name: str = "caption_length") -> tuple[int, dict[str, object]]:
    """0: no length; 1: a word count; 2: a length word."""
    if isinstance(caption_length, bool):
        raise ValueError(f"{name}={caption_length!r}: use 'any', a word count, or one of {LENGTH_WORDS}")
    if isinstance(caption_length, int) or (isinstance(caption_length, str) and caption_length.isdigit()):
        count = int(caption_length)
        if count < 1:
            raise ValueError(f"{name}={caption_length!r}: a word count must be positive")
        return 1, {"word_count": count}
    if caption_length == "any":
        return 0, {}
    if caption_length in LENGTH_WORDS:
        return 2, {"length": caption_length}
    raise ValueError(f"{name}={caption_length!r}: use 'any', a word count, or one of {', '.join(LENGTH_WORDS)}")


def _check(name: str, value: object, accepted: tuple[str, ...]) -> None:
    if value not in accepted:
        raise ValueError(f"{name}={value!r} is not accepted; use one of {', '.join(accepted)}")


def two_prompt(
    caption_type: str, caption_length: str | int, extra_options: list[str] | tuple[str, ...], name_input: str
) -> str:
    """The Alpha Two / Beta One prompt: the type's sentence, then the extra options, `{name}` filled."""
    _check("caption_type", caption_type, TWO_TYPES)
    form, values = _length_form(caption_length)
    prompt = TWO_TEMPLATES[caption_type][form].format(**values)
    if isinstance(extra_options, str) or not all(isinstance(o, str) for o in extra_options):
        raise ValueError(f"extra_options must be a list of sentences, got {extra_options!r}")
    if extra_options:
        prompt += " " + " ".join(extra_options)
    if "{name}" in prompt and not name_input:
        raise ValueError("an extra option refers to {name}: set name_input")
    return prompt.replace("{name}", name_input)


def beta_one_prompt(
    caption_type: str, caption_length: str | int, extra_options: list[str] | tuple[str, ...], name_input: str
) -> str:
    return two_prompt(caption_type, caption_length, extra_options, name_input)


def alpha_one_prompt(caption_type: str, caption_tone: str, caption_length: str | int) -> str:
    _check("caption_type", caption_type, ONE_TYPES)
    _check("caption_tone", caption_tone, ONE_TONES)
    tone = "formal" if caption_type in ("booru", "stable_diffusion") else caption_tone
    base = _ONE_BASE[(caption_type, tone)]
    form, values = _length_form(caption_length)
    if form == 1:
        return f"{base} within {values['word_count']} words."
    if form == 2:
        return base.replace("Write a ", f"Write a {values['length']} ", 1) + "."
    return base + "."
