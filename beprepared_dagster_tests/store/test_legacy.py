"""The original beprepared's workspace read without unpickling: the safe pickle decoder, key parsing, label
mapping (including a label on a derived image re-keyed to its source) and refusal of malicious pickles.

Not covered: a real workspace written by the original program (the fixture recreates its schema from the
reference study); pickles written by Python 2.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sqlite3
from pathlib import Path

import pytest

from beprepared_dagster.store.legacy import UnsafePickle, decode_pickle, find_legacy, parse_key, read_legacy


class Detections:  # a custom class, as the original's NudeNetDetections: needs GLOBAL to unpickle
    def __init__(self, boxes: list) -> None:
        self.boxes = boxes


class Evil:
    """Unpickling this would run a shell command that creates `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def oid(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def make_original_workspace(root: Path, marker: Path) -> dict[str, str]:
    """An original-format workspace: `_beprepared/db.sqlite3` (schema of the original's migration 2, WAL)
    with pickled values, and `_beprepared/objects/`. Returns the object ids it uses, by role."""
    base = root / "_beprepared"
    (base / "objects").mkdir(parents=True)
    image = b"image bytes of a.jpg"
    ids = {"a": hashlib.sha256(image).hexdigest(), "b": oid("b"), "c": oid("c"), "c_jpeg": oid("c.jpeg")}
    ids.update(d=oid("d"), e=oid("e"), e_crop=oid("e crop"), corrupt=oid("expected content"))
    for object_id, data in ((ids["a"], image), (ids["corrupt"], b"tampered content")):
        path = base / "objects" / object_id[:2] / object_id[2:4] / object_id
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    rows = [
        ('objectid("/photos/a.jpg")', None, pickle.dumps(ids["a"])),
        (f'width("{ids["a"]}")', None, pickle.dumps(640)),
        (f'humanfilter("{ids["a"]}")', "default", pickle.dumps(True)),
        (f'humanfilter("{ids["b"]}")', "default", pickle.dumps(False, protocol=0)),
        (
            f'humantag("{ids["a"]}")',
            "tags",
            pickle.dumps({"version": 2, "tags": ["dog", "cat"], "rejected": False}),
        ),
        (
            f'humantag("{ids["b"]}")',
            "tags",
            pickle.dumps({"version": 1, "tags": {"z", "a"}, "rejected": True}, 4),
        ),
        (
            f'humancaption("{ids["a"]}")',
            "default",
            pickle.dumps({"version": 1, "caption": "a dog"}, protocol=2),
        ),
        (f'convertformat("v1","JPEG","{ids["c"]}")', None, pickle.dumps(ids["c_jpeg"])),
        (f'humanfilter("{ids["c_jpeg"]}")', "default", pickle.dumps(True, protocol=5)),
        (
            f'croptoaspect("{ids["e"]}","{{\\"aspect_ratios\\": [1.0]}}")',
            None,
            pickle.dumps({"objectid": ids["e_crop"]}),
        ),
        (f'humancaption("{ids["e_crop"]}")', "default", pickle.dumps({"version": 1, "caption": "cropped"})),
        (f'humanfilter("{ids["d"]}")', "default", pickle.dumps(Evil(marker), protocol=0)),
        (f'humancaption("{ids["d"]}")', "default", pickle.dumps(Evil(marker), protocol=4)),
        (f'humanfilter("old-domain","{ids["e"]}")', None, pickle.dumps(True)),
        (f'nudenet("{ids["a"]}")', None, pickle.dumps(Detections([1, 2]))),
        (f'clip_embedding("openai/clip-vit-large-patch14","{ids["a"]}")', None, pickle.dumps([0.5] * 4)),
    ]
    conn = sqlite3.connect(base / "db.sqlite3")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(
        """
        CREATE TABLE migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
        INSERT INTO migrations (version) VALUES (1), (2);
        CREATE TABLE property_cache (key TEXT, domain TEXT, value BLOB, last_updated TIMESTAMP,
                                     PRIMARY KEY (key, domain));
        """
    )
    conn.executemany("INSERT INTO property_cache VALUES (?, ?, ?, CURRENT_TIMESTAMP)", rows)
    conn.commit()
    conn.close()
    return ids


PLAIN = [
    None,
    True,
    False,
    0,
    -7,
    2**70,
    -(2**100),
    1.5,
    "é ✓",
    "",
    [1, [2, [3]]],
    (1,),
    (1, 2),
    (1, 2, 3),
    (1, 2, 3, 4),
    (),
    {"a": [1, {"b": None}], 3: (True, 2.5)},
    {},
]


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_plain_values_round_trip_in_every_protocol(protocol):
    for value in PLAIN:
        assert decode_pickle(pickle.dumps(value, protocol=protocol)) == value
    shared = [1]
    decoded = decode_pickle(pickle.dumps([shared, shared], protocol=protocol))
    assert decoded == [[1], [1]] and decoded[0] is decoded[1]  # the memo keeps shared references


@pytest.mark.parametrize("protocol", range(3, pickle.HIGHEST_PROTOCOL + 1))
def test_bytes_round_trip_from_protocol_3(protocol):
    assert decode_pickle(pickle.dumps([b"\x00\xff", b""], protocol=protocol)) == [b"\x00\xff", b""]


@pytest.mark.parametrize("protocol", range(4, pickle.HIGHEST_PROTOCOL + 1))
def test_sets_round_trip_from_protocol_4(protocol):
    value = {"s": {1, 2, 3}, "f": frozenset({"a"})}
    assert decode_pickle(pickle.dumps(value, protocol=protocol)) == value
    assert decode_pickle(pickle.dumps(bytearray(b"xy"), protocol=5)) == b"xy"


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_anything_naming_a_callable_is_refused_and_never_runs(tmp_path, protocol):
    marker = tmp_path / "pwned"
    for value in (Evil(marker), Detections([1]), [1, Evil(marker)], {"k": Detections([])}):
        with pytest.raises(UnsafePickle, match="unsafe pickle"):
            decode_pickle(pickle.dumps(value, protocol=protocol))
    assert not marker.exists()
    with pytest.raises(UnsafePickle, match=r"posix\.system|nt\.system"):
        decode_pickle(pickle.dumps(Evil(marker), protocol=0))


def test_hand_written_opcodes_are_refused():
    for data in (
        b"cos\nsystem\n(S'touch /tmp/x'\ntR.",  # GLOBAL + REDUCE
        b"(cos\nsystem\nS'x'\no.",  # OBJ
        b"(S'x'\nios\nsystem\n.",  # INST
        b"\x80\x04\x8c\x02os\x8c\x06system\x93.",  # STACK_GLOBAL
        b"}S'a'\nb.",  # BUILD on a dict
        b"\x80\x02\x82\x01.",  # EXT1 (copyreg extension registry)
        b"P1\n.",  # PERSID
    ):
        with pytest.raises(UnsafePickle):
            decode_pickle(data)


def test_malformed_input_is_refused_not_crashed():
    good = pickle.dumps({"a": [1, 2]})
    for data in (good[:-3], b"", b"garbage", b"a.", b"}]]s.", b"]K\x01K\x02s.", "not bytes", None):
        with pytest.raises(UnsafePickle):
            decode_pickle(data)  # type: ignore[arg-type]


def test_parse_key_reads_the_originals_key_format():
    assert parse_key('humanfilter("ab")') == ("humanfilter", ["ab"])
    assert parse_key("clip") == ("clip", [])
    scope, args = parse_key('llm("m",{"temperature"=0.5,"x"="a=\\"b"},"text (with) = sign")')
    assert scope == "llm" and args == ["m", {"temperature": 0.5, "x": 'a="b'}, "text (with) = sign"]
    with pytest.raises(ValueError):
        parse_key('broken("x"')


def test_read_legacy_maps_labels_and_counts_what_it_skips(tmp_path):
    marker = tmp_path / "pwned"
    ids = make_original_workspace(tmp_path / "old", marker)
    root = find_legacy(tmp_path / "old")
    assert root == tmp_path / "old" / "_beprepared" and find_legacy(root) == root
    assert find_legacy(tmp_path) is None
    scan = read_legacy(root)
    got = {(x.domain, x.kind, x.image_id): x.value for x in scan.labels}
    assert got == {
        ("default", "filter", ids["a"]): {"keep": True},
        ("default", "filter", ids["b"]): {"keep": False},
        ("tags", "tag", ids["a"]): {"tags": ["dog", "cat"], "rejected": False, "version": 2},
        ("tags", "tag", ids["b"]): {"tags": ["a", "z"], "rejected": True, "version": 1},
        ("default", "caption", ids["a"]): {"caption": "a dog", "version": 1},
        ("default", "filter", ids["c"]): {"keep": True},  # given on the JPEG conversion of c
        ("old-domain", "filter", ids["e"]): {"keep": True},  # a key from before the domain column
        ("default", "caption", ids["e"]): {"caption": "cropped", "version": 1},  # given on a crop of e
    }
    assert scan.rekeyed == 2 and scan.rows == 16
    assert (
        scan.skipped["unsafe pickle (GLOBAL posix.system)"] + scan.skipped["unsafe pickle (GLOBAL nt.system)"]
        == 1
    )
    assert (
        scan.skipped["unsafe pickle (STACK_GLOBAL posix.system)"]
        + scan.skipped["unsafe pickle (STACK_GLOBAL nt.system)"]
        == 1
    )
    for scope in ("objectid", "width", "convertformat", "croptoaspect", "nudenet", "clip_embedding"):
        assert scan.skipped[f"computed result with no counterpart here ({scope})"] == 1
    assert not marker.exists()


def test_read_legacy_filters_by_name_and_domain(tmp_path):
    make_original_workspace(tmp_path / "old", tmp_path / "pwned")
    tags_only = read_legacy(tmp_path / "old" / "_beprepared", lambda name: name == "humantag")
    assert {x.kind for x in tags_only.labels} == {"tag"} and len(tags_only.labels) == 2
    assert sum(tags_only.skipped.values()) == 0
    default = read_legacy(tmp_path / "old" / "_beprepared", domain="default")
    assert {x.domain for x in default.labels} == {"default"} and len(default.labels) == 5
    assert not any("no counterpart" in reason for reason in default.skipped)
