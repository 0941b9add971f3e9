"""CLIP token counting (`export.clip_tokens`): known token ids, CLIP's text cleaning, and agreement with an
independent implementation (instant-clip-tokenizer, Rust, its own embedded copy of the vocabulary).

Not covered here: how the counts feed the statistics (test_stats.py).
"""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from beprepared_dagster.export.clip_tokens import USABLE_TOKENS, ClipTokenizer, clean, count_tokens, tokenizer

# Token ids as published with OpenAI CLIP / instant-clip-tokenizer's README (start/end tokens left out).
KNOWN = {
    "a photo of a cat": [320, 1125, 539, 320, 2368],
    "A person riding a motorcycle": [320, 2533, 6765, 320, 10297],
}


@pytest.mark.parametrize(("text", "ids"), KNOWN.items())
def test_known_token_ids(text, ids):
    assert tokenizer().encode(text) == ids
    assert count_tokens(text) == len(ids)


def test_a_photo_of_a_cat_is_five_tokens_not_a_word_count():
    assert count_tokens("a photo of a cat") == 5
    # Sub-word pieces and punctuation count: one booru tag can be many tokens.
    assert count_tokens("hatsune_miku_(vocaloid)") == 8
    assert count_tokens("masterpiece, best quality") == 4  # the comma is a token
    assert tokenizer().encode("1girl") == [272, 1611]  # a digit is always its own token


def test_vocabulary_size_and_special_tokens():
    encoder = tokenizer().encoder
    assert len(encoder) == 49408
    assert encoder["<|startoftext|>"] == 49406 and encoder["<|endoftext|>"] == 49407


def test_cleaning_matches_clip():
    assert clean("  A  Photo\n\tOF a CAT ") == "a photo of a cat"
    assert clean("fish &amp;amp; chips") == "fish & chips"  # unescaped twice, as CLIP does
    assert clean("“quoted” ‘text’") == "\"quoted\" 'text'"  # ftfy straightens curly quotes
    assert count_tokens("A PHOTO OF A CAT") == 5
    assert count_tokens("") == 0


def test_long_captions_exceed_the_clip_window():
    long_caption = ", ".join(["a very detailed description of a scene"] * 12)
    assert count_tokens(long_caption) > USABLE_TOKENS == 75


def test_agrees_with_an_independent_implementation():
    instant = pytest.importorskip("instant_clip_tokenizer")  # a dev dependency; the Rust port of CLIP's BPE
    reference = instant.Tokenizer()
    ours = ClipTokenizer()
    rng = random.Random(1234)
    alphabet = "abcdefghijklmnopqrstuvwxyz ABCXYZ 0123456789 ,.;:!?'\"()[]_-/@#*+=~|<> éüñçß名前日本語한국어русскийΩ😀"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80))) for _ in range(1500)]
    ascii_only = "abcdefghijklmnopqrstuvwxyz ABCXYZ 0123456789 ,.;:!?'\"()[]_-/@#*+=~|<>&\t\n"
    texts += ["".join(rng.choice(ascii_only) for _ in range(rng.randint(0, 80))) for _ in range(1500)]
    texts += ["1girl, solo, long_hair, hatsune_miku_(vocaloid), ^_^", "score_9, score_8_up, rating_safe"]
    # instant-clip-tokenizer does the BPE but not CLIP's ftfy/HTML cleaning: compare on cleaned text.
    mismatches = [t for t in texts if ours.encode(t) != list(reference.encode(clean(t)))]
    assert mismatches == []


def test_importing_never_pulls_torch():
    code = "import beprepared_dagster.export.clip_tokens as c, sys; c.count_tokens('a cat'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_every_merge_line_is_two_tokens_and_one_space():
    """The ranks are keyed by the merge lines as they are ("first second"): that needs exactly one space."""
    merges = ClipTokenizer()._merges
    assert len(merges) == 49152 - 256 - 2
    assert all(line.count(" ") == 1 and len(line.split(" ")) == 2 and all(line.split(" ")) for line in merges)
