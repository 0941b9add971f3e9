"""CLIP token counts, offline and without torch: OpenAI CLIP's simple tokenizer re-implemented over its
vendored BPE merges (`data/bpe_simple_vocab_16e6.txt.gz`, MIT, see `data/CLIP_VOCAB_LICENSE.txt`).

This is the tokenizer of the CLIP ViT-L/14 text encoder used by SD 1.x, SDXL (both encoders share the
vocabulary) and Flux's CLIP-L: text cleaned with ftfy and double HTML unescaping, whitespace collapsed, lower
case, split by CLIP's regex, then byte-level BPE. Counts exclude the start/end tokens, so a caption fits the
77-token context when it has at most 75 tokens.
"""

from __future__ import annotations

import functools
import html
import re
import threading
import zlib
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

TOKENIZER_NAME = "CLIP BPE (OpenAI simple tokenizer, bpe_simple_vocab_16e6, 49,408 tokens)"
CONTEXT_LENGTH = 77
USABLE_TOKENS = CONTEXT_LENGTH - 2  # minus <|startoftext|> and <|endoftext|>
VOCAB_PATH = Path(__file__).resolve().parent / "data" / "bpe_simple_vocab_16e6.txt.gz"
# CLIP's pre-tokenizer (compiled on first use: importing `regex` takes a tenth of a second).
_PATTERN_TEXT = (
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
)
# The same split for printable ASCII (where \p{L} is [a-z] after lower-casing and \p{N} is [0-9]) with the
# faster `re`: most captions are ASCII, and there the byte-to-unicode step is the identity too.
_ASCII_PATTERN = re.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[a-z]+|[0-9]|[^\sa-z0-9]+"""
)
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
_NOT_PLAIN = re.compile(r"[^\x20-\x7e\t\n\r]|&")
_SPECIAL = ("<|startoftext|>", "<|endoftext|>")
MERGES = 49152 - 256 - 2  # CLIP's 49,408 tokens: 256 bytes, the same with </w>, 48,894 merges, 2 specials


def _bytes_to_unicode() -> dict[int, str]:
    """CLIP's reversible map from bytes to printable characters (so BPE never sees whitespace/control)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars), strict=True))


class ClipTokenizer:
    """CLIP's BPE tokenizer. `encode` gives token ids (no start/end tokens); `count` their number."""

    def __init__(self, vocab_path: Path = VOCAB_PATH) -> None:
        # Each merge line is "first second" (one space, checked by the tests): ranked by the line itself,
        # which spares splitting ~49,000 lines into tuples at every start (a Save counts a few captions).
        self._merges = _first_lines(vocab_path, MERGES + 1)[1:]  # line 1 is a version header
        self._byte_encoder = _bytes_to_unicode()
        self._ranks = dict(zip(self._merges, range(len(self._merges)), strict=True))
        self._cache: dict[str, tuple[str, ...]] = {t: (t,) for t in _SPECIAL}

    @functools.cached_property
    def encoder(self) -> dict[str, int]:
        """Token → id (built on first use: counting, all the statistics need, does without it)."""
        vocab = list(self._byte_encoder.values())
        vocab += [v + "</w>" for v in vocab]
        vocab += [merge.replace(" ", "") for merge in self._merges]
        vocab += list(_SPECIAL)
        return {token: i for i, token in enumerate(vocab)}

    def _bpe(self, token: str) -> tuple[str, ...]:
        cached = self._cache.get(token)
        if cached is not None:
            return cached
        word = (*token[:-1], token[-1] + "</w>")
        ranks, unranked = self._ranks, 1 << 30
        while len(word) > 1:
            pairs = set(zip(word, word[1:], strict=False))
            best = min(pairs, key=lambda pair: ranks.get(f"{pair[0]} {pair[1]}", unranked))
            if f"{best[0]} {best[1]}" not in ranks:
                break
            word = _merge(word, best)
        self._cache[token] = word
        return word

    def _pieces(self, text: str) -> list[str]:
        cleaned = clean(text)
        if _PRINTABLE_ASCII.fullmatch(cleaned):
            return [piece for word in _ASCII_PATTERN.findall(cleaned) for piece in self._bpe(word)]
        pieces = []
        for match in _unicode_pattern().findall(cleaned):
            token = "".join(self._byte_encoder[b] for b in match.encode("utf-8"))
            pieces.extend(self._bpe(token))
        return pieces

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, without the start and end tokens."""
        return [self.encoder[piece] for piece in self._pieces(text)]

    def count(self, text: str) -> int:
        """How many CLIP tokens `text` takes, without the start and end tokens."""
        return len(self._pieces(text))


def _first_lines(path: Path, count: int) -> list[str]:
    """The first `count` lines of a gzip-compressed UTF-8 file, decompressing no more of it than they take
    (CLIP's vocabulary file holds 262,000 lines; the merges are its first 49,000, a sixth of its bytes)."""
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing
    data, lines = bytearray(), 0
    with open(path, "rb") as f:
        while lines < count:
            chunk = f.read(1 << 16)
            if not chunk:
                data += inflate.flush()
                break
            piece = inflate.decompress(chunk)
            data += piece
            lines += piece.count(b"\n")
    whole = bytes(data[: data.rfind(b"\n") + 1] or data)  # a newline byte ends a whole UTF-8 character
    return whole.decode("utf-8").split("\n", count)[:count]


def _merge(word: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    first, second = pair
    merged: list[str] = []
    i = 0
    while i < len(word):
        if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
            merged.append(first + second)
            i += 2
        else:
            merged.append(word[i])
            i += 1
    return tuple(merged)


@cache
def _unicode_pattern() -> Any:
    import regex  # \p{L} / \p{N} classes, which `re` lacks

    return regex.compile(_PATTERN_TEXT, regex.IGNORECASE)


def clean(text: str) -> str:
    """CLIP's cleaning: ftfy, HTML unescaped twice, whitespace collapsed, lower case."""
    if not _plain(text):
        import ftfy  # only for text that can need it: fix_text is the slow part and is a no-op on plain ASCII

        text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text))
    return " ".join(text.split()).lower()


def _plain(text: str) -> bool:
    """Printable ASCII (and ordinary whitespace) without `&`: ftfy would return it unchanged."""
    return _NOT_PLAIN.search(text) is None


_LOADING = threading.Lock()


def tokenizer() -> ClipTokenizer:
    """The shared tokenizer (the vocabulary loads once, in under a tenth of a second)."""
    with _LOADING:  # one load, also when `preload`'s thread is at it
        return _load()


@cache
def _load() -> ClipTokenizer:
    return ClipTokenizer()


def preload() -> None:
    """Load the vocabulary on a thread, so it is ready when the statistics count tokens (an export starts
    it before reading its rows, which leaves the interpreter lock free while DuckDB works)."""
    threading.Thread(target=tokenizer, name="clip-vocabulary", daemon=True).start()


@lru_cache(maxsize=65536)  # datasets repeat captions (SetCaption, trigger-only captions): count each once
def count_tokens(text: str) -> int:
    """CLIP tokens of `text` (start/end tokens excluded)."""
    return tokenizer().count(text)
