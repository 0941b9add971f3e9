"""JoyCaption's prompt vocabularies: the exact sentences each model was trained on, lengths, extra options,
`{name}`, and the errors a user gets for a value the model does not know. Does not run a model."""

from __future__ import annotations

import re

import pytest

from beprepared_dagster.nodes.joycaption_prompts import (
    BETA_ONE_EXTRA_OPTIONS,
    BETA_ONE_TEMPLATES,
    BETA_ONE_TYPES,
    EXTRA_OPTIONS,
    LENGTH_WORDS,
    ONE_TONES,
    ONE_TYPES,
    TWO_TEMPLATES,
    TWO_TYPES,
    alpha_one_prompt,
    alpha_two_prompt,
    beta_one_prompt,
)


def test_beta_one_default_is_joycaptions_own_long_descriptive_prompt():
    assert (
        beta_one_prompt("descriptive", "long", [], "") == "Write a long detailed description for this image."
    )


@pytest.mark.parametrize("length", [40, "40"])
def test_a_word_count_picks_the_word_count_sentence(length):
    assert beta_one_prompt("descriptive", length, [], "") == (
        "Write a detailed description for this image in 40 words or less."
    )
    assert alpha_two_prompt("training_prompt", length, [], "") == (
        "Write a stable diffusion prompt for this image within 40 words."
    )


def test_any_length_picks_the_plain_sentence():
    assert beta_one_prompt("midjourney", "any", [], "") == "Write a MidJourney prompt for this image."
    assert alpha_two_prompt("booru_tag_list", "any", [], "") == "Write a list of Booru tags for this image."


def test_beta_one_has_its_own_types_and_sentences():
    assert {"straightforward", "danbooru_tag_list", "e621_tag_list", "rule34_tag_list"} <= set(BETA_ONE_TYPES)
    assert "training_prompt" not in BETA_ONE_TYPES
    straightforward = beta_one_prompt("straightforward", "any", [], "")
    assert straightforward.startswith(
        "Write a straightforward caption for this image. Begin with the main subject"
    )
    assert straightforward.endswith("without starting with “This image is…” or similar phrasing.")
    assert beta_one_prompt("stable_diffusion_prompt", "short", [], "") == (
        "Output a short stable diffusion prompt that is indistinguishable from a real stable diffusion prompt."
    )
    assert len(BETA_ONE_EXTRA_OPTIONS) == 27 and len(EXTRA_OPTIONS) == 17


@pytest.mark.parametrize(
    ("templates", "build"),
    [(BETA_ONE_TEMPLATES, beta_one_prompt), (TWO_TEMPLATES, alpha_two_prompt)],
    ids=["beta_one", "alpha_two"],
)
def test_every_type_and_length_gives_a_complete_distinct_sentence(templates, build):
    for caption_type in templates:
        forms = [build(caption_type, length, [], "") for length in ("any", 25, "very long")]
        assert len(set(forms)) == 3, caption_type
        assert all("{" not in f and "}" not in f for f in forms), caption_type
        assert "25" in forms[1] and "very long" in forms[2]


def test_extra_options_are_appended_and_name_is_filled():
    options = [BETA_ONE_EXTRA_OPTIONS[0], "Include information about lighting."]
    prompt = beta_one_prompt("descriptive", "any", options, "Rex")
    assert prompt == (
        "Write a detailed description for this image. If there is a person/character in the image you must "
        "refer to them as Rex. Include information about lighting."
    )


def test_a_users_own_sentence_with_braces_is_kept_as_written():
    assert alpha_two_prompt("descriptive", "any", ["Use {curly} words."], "").endswith("Use {curly} words.")


def test_alpha_one_tones_and_forced_formal_types():
    assert alpha_one_prompt("descriptive", "formal", "any") == (
        "Write a descriptive caption for this image in a formal tone."
    )
    assert alpha_one_prompt("descriptive", "informal", 30) == (
        "Write a descriptive caption for this image in a casual tone within 30 words."
    )
    assert (
        alpha_one_prompt("booru", "informal", "short") == "Write a short list of Booru tags for this image."
    )
    assert alpha_one_prompt("stable_diffusion", "informal", "any") == (
        "Write a stable diffusion prompt for this image."
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: beta_one_prompt("training_prompt", "long", [], ""), "caption_type='training_prompt'"),
        (lambda: alpha_two_prompt("straightforward", "long", [], ""), "caption_type='straightforward'"),
        (lambda: alpha_one_prompt("poem", "formal", "any"), "caption_type='poem'"),
        (lambda: alpha_one_prompt("descriptive", "rude", "any"), "caption_tone='rude' is not accepted"),
        (lambda: beta_one_prompt("descriptive", "huge", [], ""), "caption_length='huge'"),
        (lambda: beta_one_prompt("descriptive", 0, [], ""), "a word count must be positive"),
        (lambda: alpha_one_prompt("descriptive", "formal", True), "caption_length=True"),
        (
            lambda: beta_one_prompt("descriptive", "long", "Include lighting.", ""),
            "extra_options must be a list",
        ),
        (lambda: beta_one_prompt("descriptive", "long", [BETA_ONE_EXTRA_OPTIONS[0]], ""), "set name_input"),
    ],
)
def test_unknown_values_name_the_parameter(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_errors_list_the_accepted_values():
    with pytest.raises(ValueError) as caught:
        beta_one_prompt("poem", "long", [], "")
    assert all(t in str(caught.value) for t in BETA_ONE_TYPES)
    with pytest.raises(ValueError) as caught:
        alpha_one_prompt("descriptive", "formal", "huge")
    assert all(w in str(caught.value) for w in LENGTH_WORDS)
    with pytest.raises(ValueError) as caught:
        alpha_one_prompt("descriptive", "loud", "any")
    assert all(t in str(caught.value) for t in ONE_TONES)
    assert set(ONE_TYPES) == {"descriptive", "stable_diffusion", "booru"} and len(TWO_TYPES) == 9
