"""JoyCaption's prompt vocabulary. The models were trained on these exact sentences, so they are data here: a
caption type, a length (`'any'`, a word count, or a length word) and optional extra sentences pick one.

Three vocabularies: Alpha One's (type + tone), Alpha Two's (nine types, extra options) and Beta One's (twelve
types, more extra options), the last copied from JoyCaption's own app and README ("How to Prompt").
Extra options are free sentences appended to the prompt; the tuples here are the ones each model was trained on.
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

# Beta One: JoyCaption's app (CAPTION_TYPE_MAP and the extra options), types in snake case.
BETA_ONE_TEMPLATES: dict[str, tuple[str, str, str]] = {
    "descriptive": (
        "Write a detailed description for this image.",
        "Write a detailed description for this image in {word_count} words or less.",
        "Write a {length} detailed description for this image.",
    ),
    "descriptive_casual": (
        "Write a descriptive caption for this image in a casual tone.",
        "Write a descriptive caption for this image in a casual tone within {word_count} words.",
        "Write a {length} descriptive caption for this image in a casual tone.",
    ),
    "straightforward": (
        "Write a straightforward caption for this image. Begin with the main subject and medium. Mention pivotal elements—people, objects, scenery—using confident, definite language. Focus on concrete details like color, shape, texture, and spatial relationships. Show how elements interact. Omit mood and speculative wording. If text is present, quote it exactly. Note any watermarks, signatures, or compression artifacts. Never mention what's absent, resolution, or unobservable details. Vary your sentence structure and keep the description concise, without starting with “This image is…” or similar phrasing.",
        "Write a straightforward caption for this image within {word_count} words. Begin with the main subject and medium. Mention pivotal elements—people, objects, scenery—using confident, definite language. Focus on concrete details like color, shape, texture, and spatial relationships. Show how elements interact. Omit mood and speculative wording. If text is present, quote it exactly. Note any watermarks, signatures, or compression artifacts. Never mention what's absent, resolution, or unobservable details. Vary your sentence structure and keep the description concise, without starting with “This image is…” or similar phrasing.",
        "Write a {length} straightforward caption for this image. Begin with the main subject and medium. Mention pivotal elements—people, objects, scenery—using confident, definite language. Focus on concrete details like color, shape, texture, and spatial relationships. Show how elements interact. Omit mood and speculative wording. If text is present, quote it exactly. Note any watermarks, signatures, or compression artifacts. Never mention what's absent, resolution, or unobservable details. Vary your sentence structure and keep the description concise, without starting with “This image is…” or similar phrasing.",
    ),
    "stable_diffusion_prompt": (
        "Output a stable diffusion prompt that is indistinguishable from a real stable diffusion prompt.",
        "Output a stable diffusion prompt that is indistinguishable from a real stable diffusion prompt. {word_count} words or less.",
        "Output a {length} stable diffusion prompt that is indistinguishable from a real stable diffusion prompt.",
    ),
    "midjourney": (
        "Write a MidJourney prompt for this image.",
        "Write a MidJourney prompt for this image within {word_count} words.",
        "Write a {length} MidJourney prompt for this image.",
    ),
    "danbooru_tag_list": (
        "Generate only comma-separated Danbooru tags (lowercase_underscores). Strict order: `artist:`, `copyright:`, `character:`, `meta:`, then general tags. Include counts (1girl), appearance, clothing, accessories, pose, expression, actions, background. Use precise Danbooru syntax. No extra text.",
        "Generate only comma-separated Danbooru tags (lowercase_underscores). Strict order: `artist:`, `copyright:`, `character:`, `meta:`, then general tags. Include counts (1girl), appearance, clothing, accessories, pose, expression, actions, background. Use precise Danbooru syntax. No extra text. {word_count} words or less.",
        "Generate only comma-separated Danbooru tags (lowercase_underscores). Strict order: `artist:`, `copyright:`, `character:`, `meta:`, then general tags. Include counts (1girl), appearance, clothing, accessories, pose, expression, actions, background. Use precise Danbooru syntax. No extra text. {length} length.",
    ),
    "e621_tag_list": (
        "Write a comma-separated list of e621 tags in alphabetical order for this image. Start with the artist, copyright, character, species, meta, and lore tags (if any), prefixed by 'artist:', 'copyright:', 'character:', 'species:', 'meta:', and 'lore:'. Then all the general tags.",
        "Write a comma-separated list of e621 tags in alphabetical order for this image. Start with the artist, copyright, character, species, meta, and lore tags (if any), prefixed by 'artist:', 'copyright:', 'character:', 'species:', 'meta:', and 'lore:'. Then all the general tags. Keep it under {word_count} words.",
        "Write a {length} comma-separated list of e621 tags in alphabetical order for this image. Start with the artist, copyright, character, species, meta, and lore tags (if any), prefixed by 'artist:', 'copyright:', 'character:', 'species:', 'meta:', and 'lore:'. Then all the general tags.",
    ),
    "rule34_tag_list": (
        "Write a comma-separated list of rule34 tags in alphabetical order for this image. Start with the artist, copyright, character, and meta tags (if any), prefixed by 'artist:', 'copyright:', 'character:', and 'meta:'. Then all the general tags.",
        "Write a comma-separated list of rule34 tags in alphabetical order for this image. Start with the artist, copyright, character, and meta tags (if any), prefixed by 'artist:', 'copyright:', 'character:', and 'meta:'. Then all the general tags. Keep it under {word_count} words.",
        "Write a {length} comma-separated list of rule34 tags in alphabetical order for this image. Start with the artist, copyright, character, and meta tags (if any), prefixed by 'artist:', 'copyright:', 'character:', and 'meta:'. Then all the general tags.",
    ),
    "booru_like_tag_list": (
        "Write a list of Booru-like tags for this image.",
        "Write a list of Booru-like tags for this image within {word_count} words.",
        "Write a {length} list of Booru-like tags for this image.",
    ),
    "art_critic": (
        "Analyze this image like an art critic would with information about its composition, style, symbolism, the use of color, light, any artistic movement it might belong to, etc.",
        "Analyze this image like an art critic would with information about its composition, style, symbolism, the use of color, light, any artistic movement it might belong to, etc. Keep it within {word_count} words.",
        "Analyze this image like an art critic would with information about its composition, style, symbolism, the use of color, light, any artistic movement it might belong to, etc. Keep it {length}.",
    ),
    "product_listing": (
        "Write a caption for this image as though it were a product listing.",
        "Write a caption for this image as though it were a product listing. Keep it under {word_count} words.",
        "Write a {length} caption for this image as though it were a product listing.",
    ),
    "social_media_post": (
        "Write a caption for this image as if it were being used for a social media post.",
        "Write a caption for this image as if it were being used for a social media post. Limit the caption to {word_count} words.",
        "Write a {length} caption for this image as if it were being used for a social media post.",
    ),
}
BETA_ONE_EXTRA_OPTIONS = (
    "If there is a person/character in the image you must refer to them as {name}.",
    "Do NOT include information about people/characters that cannot be changed (like ethnicity, gender, etc), but do still include changeable attributes (like hair style).",
    "Include information about lighting.",
    "Include information about camera angle.",
    "Include information about whether there is a watermark or not.",
    "Include information about whether there are JPEG artifacts or not.",
    "If it is a photo you MUST include information about what camera was likely used and details such as aperture, shutter speed, ISO, etc.",
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
    "If it is a work of art, do not include the artist's name or the title of the work.",
    "Identify the image orientation (portrait, landscape, or square) and aspect ratio if obvious.",
    'Use vulgar slang and profanity, such as (but not limited to) "fucking," "slut," "cock," etc.',
    "Do NOT use polite euphemisms—lean into blunt, casual phrasing.",
    "Include information about the ages of any people/characters when applicable.",
    "Mention whether the image depicts an extreme close-up, close-up, medium close-up, medium shot, cowboy shot, medium wide shot, wide shot, or extreme wide shot.",
    "Do not mention the mood/feeling/etc of the image.",
    "Explicitly specify the vantage height (eye-level, low-angle worm’s-eye, bird’s-eye, drone, rooftop, etc.).",
    "If there is a watermark, you must mention it.",
    'Your response will be used by a text-to-image model, so avoid useless meta phrases like “This image shows…”, "You are looking at...", etc.',
)
BETA_ONE_TYPES = tuple(BETA_ONE_TEMPLATES)

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
        raise ValueError(
            f"{name}={caption_length!r}: use 'any', a word count, or one of {', '.join(LENGTH_WORDS)}"
        )
    if isinstance(caption_length, int) or (isinstance(caption_length, str) and caption_length.isdigit()):
        count = int(caption_length)
        if count < 1:
            raise ValueError(f"{name}={caption_length!r}: a word count must be positive")
        return 1, {"word_count": count}
    if caption_length == "any":
        return 0, {}
    if caption_length in LENGTH_WORDS:
        return 2, {"length": caption_length}
    raise ValueError(
        f"{name}={caption_length!r}: use 'any', a word count, or one of {', '.join(LENGTH_WORDS)}"
    )


def _check(name: str, value: object, accepted: tuple[str, ...]) -> None:
    if value not in accepted:
        raise ValueError(f"{name}={value!r} is not accepted; use one of {', '.join(accepted)}")


def _build(
    templates: dict[str, tuple[str, str, str]],
    caption_type: str,
    caption_length: str | int,
    extra_options: list[str] | tuple[str, ...],
    name_input: str,
) -> str:
    _check("caption_type", caption_type, tuple(templates))
    form, values = _length_form(caption_length)
    prompt = templates[caption_type][form].format(**values)
    if isinstance(extra_options, str) or not all(isinstance(o, str) for o in extra_options):
        raise ValueError(f"extra_options must be a list of sentences, got {extra_options!r}")
    if extra_options:
        prompt += " " + " ".join(extra_options)
    if "{name}" in prompt and not name_input:
        raise ValueError("an extra option refers to {name}: set name_input")
    # Not str.format: a user's own extra sentence may hold braces.
    return prompt.replace("{name}", name_input or "")


def two_prompt(
    caption_type: str, caption_length: str | int, extra_options: list[str] | tuple[str, ...], name_input: str
) -> str:
    """The Alpha Two prompt: the type's sentence, then the extra options, `{name}` filled from `name_input`.

    Raises:
        ValueError: an unknown `caption_type` or `caption_length` (naming the accepted values), or an extra
            option that refers to `{name}` without a `name_input`.
    """
    return _build(TWO_TEMPLATES, caption_type, caption_length, extra_options, name_input)


alpha_two_prompt = two_prompt


def beta_one_prompt(
    caption_type: str, caption_length: str | int, extra_options: list[str] | tuple[str, ...], name_input: str
) -> str:
    """The Beta One prompt (types `BETA_ONE_TYPES`, extra options `BETA_ONE_EXTRA_OPTIONS`), built like
    JoyCaption's app builds it.

    Raises:
        ValueError: as `two_prompt`.
    """
    return _build(BETA_ONE_TEMPLATES, caption_type, caption_length, extra_options, name_input)


def alpha_one_prompt(caption_type: str, caption_tone: str, caption_length: str | int) -> str:
    """The Alpha One prompt; `booru` and `stable_diffusion` are always formal, as in the original.

    Raises:
        ValueError: an unknown `caption_type`, `caption_tone` or `caption_length`.
    """
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
