"""Unit tests of Load's discovery, `nodes.load.scan_folder`: which files are found, which are reported as
problems (symlink loops, unreadable files), and how the file index makes a rescan hash only what changed.

Not covered here: copying files into the object store and probing them (the Load stage, executor tests),
the Dagster discovery sensor, and very large folders (performance).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import unicodedata
from pathlib import Path

import pytest

from beprepared_dagster.errors import WorkflowError
from beprepared_dagster.nodes import Load
from beprepared_dagster.nodes.load import ScanResult, scan_folder
from beprepared_dagster.store import files
from beprepared_dagster.store.db import Database
from beprepared_dagster.store.files import FileEntry
from beprepared_dagster_tests.conftest import BAD_FIXTURES, GOOD_FIXTURES, make_image, make_images


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def can_read_unreadable() -> bool:
    """Root (and CAP_DAC_OVERRIDE) reads a chmod-000 file anyway."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def next_index(index: dict[str, FileEntry], result: ScanResult) -> dict[str, FileEntry]:
    """What the file index holds after `files.replace_index(changed, removed)`."""
    new = {p: e for p, e in index.items() if p not in result.removed}
    new.update({e.path: e for e in result.changed})
    return new


@pytest.fixture
def scan_root(fixture_folder: Path) -> Path:
    """Good and bad fixtures, a nested folder, a text file, a hidden folder, an unreadable file and two
    symlink loops (a folder link to its parent, a file link to itself)."""
    root = fixture_folder
    make_image(root / "nested" / "deeper" / "inner.jpg", 16, 16, seed=7)
    (root / "notes.txt").write_text("not an image")
    make_image(root / ".thumbnails" / "thumb.jpg", 8, 8, seed=8)
    locked = make_image(root / "locked.jpg", 8, 8, seed=9)
    locked.chmod(0)
    os.symlink("..", root / "nested" / "up")
    os.symlink("loop.jpg", root / "loop.jpg")
    yield root
    locked.chmod(0o644)


def expected_files(root: Path) -> list[Path]:
    return [root / n for n in GOOD_FIXTURES + BAD_FIXTURES] + [
        root / "nested/deeper/inner.jpg",
        root / "locked.jpg",
    ]


def test_scan_finds_and_hashes_every_image_file(scan_root: Path):
    result = scan_folder(scan_root, {})
    paths = {e.path for e in result.changed if e.sha256}
    readable = [p for p in expected_files(scan_root) if p.name != "locked.jpg" or can_read_unreadable()]
    assert paths == {str(p) for p in readable}
    assert result.files == len(expected_files(scan_root))
    for entry in result.changed:
        if entry.sha256:
            path = Path(entry.path)
            assert entry.sha256 == sha(path)
            assert entry.size == path.stat().st_size
            assert entry.mtime_ns == path.stat().st_mtime_ns
            assert entry.error is None
    assert set(result.hashes) == {sha(p) for p in readable}
    assert result.removed == []


def test_scan_includes_bad_images_hashing_is_not_probing(scan_root: Path):
    result = scan_folder(scan_root, {})
    # Bad images are the Load stage's business (rejected with a reason), not discovery's.
    for name in BAD_FIXTURES:
        assert sha(scan_root / name) in result.hashes


def test_scan_matches_extensions_case_insensitively_and_keeps_unicode_names(scan_root: Path):
    make_image(scan_root / "Mixed.Png", 8, 8, seed=11, fmt="PNG")
    make_image(scan_root / "shot.TIF", 8, 8, seed=12, fmt="TIFF")
    result = scan_folder(scan_root, {})
    paths = {e.path for e in result.changed}
    assert str(scan_root / "UPPER-CASE.JPG") in paths
    assert str(scan_root / "lower.jpeg") in paths
    assert str(scan_root / "Mixed.Png") in paths
    assert str(scan_root / "shot.TIF") in paths
    unicode_name = unicodedata.normalize("NFC", "ünïcode-名前.png")
    assert str(scan_root / unicode_name) in paths


def test_scan_ignores_non_images_and_hidden_files(scan_root: Path):
    result = scan_folder(scan_root, {})
    everything = {e.path for e in result.changed} | {p for p, _ in result.problems}
    assert not any(p.endswith("notes.txt") for p in everything)
    assert not any(".thumbnails" in p for p in everything)


def test_scan_descends_into_nested_folders(scan_root: Path):
    result = scan_folder(scan_root, {})
    inner = scan_root / "nested" / "deeper" / "inner.jpg"
    assert str(inner) in {e.path for e in result.changed}
    assert sha(inner) in result.hashes


def test_symlink_loops_terminate_and_are_reported(scan_root: Path):
    result = scan_folder(scan_root, {})
    problems = dict(result.problems)
    assert "symlink loop" in problems[str(scan_root / "nested" / "up")]
    assert "symlink loop" in problems[str(scan_root / "loop.jpg")]
    # Nothing is indexed twice through the loop.
    assert not any("/up/" in e.path for e in result.changed)
    # The loop is recorded in the index (so the Load stage can list it as unreadable) without a hash.
    recorded = {e.path: e for e in result.changed}
    assert recorded[str(scan_root / "loop.jpg")].sha256 is None
    assert "symlink loop" in recorded[str(scan_root / "loop.jpg")].error


def test_broken_symlink_is_reported(tmp_path: Path):
    root = tmp_path / "photos"
    make_image(root / "a.jpg", 8, 8)
    os.symlink(root / "gone.jpg", root / "dangling.jpg")
    result = scan_folder(root, {})
    assert [p for p, _ in result.problems] == [str(root / "dangling.jpg")]
    assert result.hashes == [sha(root / "a.jpg")]


def test_unreadable_file(scan_root: Path):
    locked = scan_root / "locked.jpg"
    result = scan_folder(scan_root, {})
    problems = dict(result.problems)
    if can_read_unreadable():
        # Running as root: chmod 000 does not stop reading, so the file is simply hashed.
        assert str(locked) not in problems
        assert sha(locked) in result.hashes
    else:
        assert problems[str(locked)] == "unreadable: permission denied"
        entry = next(e for e in result.changed if e.path == str(locked))
        assert entry.sha256 is None and entry.error == "unreadable: permission denied"


def test_permission_denied_is_a_problem_and_retried_later(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The non-root case of the test above, simulated so it runs as root too."""
    from beprepared_dagster.nodes import load

    root = tmp_path / "photos"
    make_image(root / "a.jpg", 8, 8, seed=1)
    locked = make_image(root / "locked.jpg", 8, 8, seed=2)
    real_hash_file = load.hash_file

    def hash_file(path):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_hash_file(path)

    monkeypatch.setattr(load, "hash_file", hash_file)
    logged: list[str] = []
    first = scan_folder(root, {}, log=logged.append)
    assert first.problems == [(str(locked), "unreadable: permission denied")]
    assert logged == [f"skipped {locked}: unreadable: permission denied"]
    assert first.hashes == [sha(root / "a.jpg")]
    entry = next(e for e in first.changed if e.path == str(locked))
    assert (entry.sha256, entry.error) == (None, "unreadable: permission denied")

    logged.clear()
    second = scan_folder(root, next_index({}, first), log=logged.append)
    assert second.hashed == 1  # retried: permissions may have been fixed
    assert logged == []  # but not reported again
    assert str(locked) not in second.removed

    monkeypatch.setattr(load, "hash_file", real_hash_file)
    third = scan_folder(root, next_index(next_index({}, first), second))
    assert third.problems == []
    assert sha(locked) in third.hashes


def test_problems_are_logged_once(scan_root: Path):
    logged: list[str] = []
    first = scan_folder(scan_root, {}, log=logged.append)
    assert any("loop.jpg" in line and "symlink loop" in line for line in logged)
    assert len(logged) == len(first.problems)
    logged.clear()
    scan_folder(scan_root, next_index({}, first), log=logged.append)
    assert logged == []


def test_rescan_with_the_index_hashes_nothing(scan_root: Path):
    first = scan_folder(scan_root, {})
    assert first.hashed == first.files
    second = scan_folder(scan_root, next_index({}, first))
    # Only an unreadable file is retried (it may have become readable); as root there is none.
    retried = 0 if can_read_unreadable() else 1
    assert second.hashed == retried
    assert second.files == first.files
    assert second.hashes == first.hashes
    assert second.removed == []
    assert [e for e in second.changed if e.sha256] == []


def test_rescan_through_the_database_index(scan_root: Path, tmp_path: Path):
    """The same, with the index stored in and read back from DuckDB, as discovery does."""
    db = Database(tmp_path / "ws" / "beprepared.duckdb")
    root = str(scan_root)
    first = scan_folder(scan_root, {})
    with db.connect() as conn:
        files.replace_index(conn, root, first.changed, first.removed)
    with db.connect() as conn:
        index = files.read_index(conn, root)
    assert index == next_index({}, first)
    second = scan_folder(scan_root, index)
    assert second.hashed == (0 if can_read_unreadable() else 1)
    assert second.hashes == first.hashes


def test_changed_content_is_rehashed(scan_root: Path):
    first = scan_folder(scan_root, {})
    index = next_index({}, first)
    target = scan_root / "64x48.jpg"
    old_hash = sha(target)
    before = target.stat()
    make_image(target, 64, 48, seed=99)  # different bytes, most likely a different size
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    second = scan_folder(scan_root, index)
    assert second.hashed == (1 if can_read_unreadable() else 2)
    [entry] = [e for e in second.changed if e.sha256]
    assert entry.path == str(target)
    assert entry.sha256 == sha(target) != old_hash
    assert sha(target) in second.hashes
    assert old_hash not in second.hashes


def test_same_size_edit_with_a_new_mtime_is_noticed(scan_root: Path):
    first = scan_folder(scan_root, {})
    target = scan_root / "bitmap.bmp"
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF  # same size, different content
    before = target.stat()
    target.write_bytes(bytes(data))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    second = scan_folder(scan_root, next_index({}, first))
    assert sha(target) in second.hashes
    assert [e.path for e in second.changed if e.sha256] == [str(target)]


def test_removed_file_is_reported(scan_root: Path):
    first = scan_folder(scan_root, {})
    index = next_index({}, first)
    gone = scan_root / "bitmap.bmp"
    gone_hash = sha(gone)
    gone.unlink()
    shutil.rmtree(scan_root / "nested" / "deeper")
    second = scan_folder(scan_root, index)
    assert second.removed == sorted([str(gone), str(scan_root / "nested" / "deeper" / "inner.jpg")])
    assert gone_hash not in second.hashes
    assert second.files == first.files - 2
    # The loops are still problems, not removals.
    assert str(scan_root / "loop.jpg") not in second.removed


def test_identical_copies_give_one_hash(tmp_path: Path):
    root = tmp_path / "photos"
    a = make_image(root / "a.jpg", 8, 8, seed=1)
    shutil.copy(a, root / "b.jpg")
    make_image(root / "c.jpg", 8, 8, seed=2)
    result = scan_folder(root, {})
    assert len(result.changed) == 3
    assert result.hashes == [sha(a), sha(root / "c.jpg")]  # ordered by first path


def test_hashes_follow_path_order(tmp_path: Path):
    root = tmp_path / "photos"
    for name, seed in [("b.jpg", 1), ("a.jpg", 2), ("sub/c.jpg", 3)]:
        make_image(root / name, 8, 8, seed=seed)
    result = scan_folder(root, {})
    assert result.hashes == [sha(root / "a.jpg"), sha(root / "b.jpg"), sha(root / "sub" / "c.jpg")]


def test_a_symlink_to_a_sibling_folder_does_not_hide_the_real_folder(tmp_path: Path):
    """`alias -> real` is not a loop: the real folder's files keep their real paths, and the real folder is not
    reported as a problem (a user would be told their own photo folder is a 'symlink loop')."""
    root = tmp_path / "photos"
    make_image(root / "real" / "x.jpg", 8, 8, seed=1)
    os.symlink("real", root / "zz_alias")
    os.symlink("real", root / "aa_alias")
    result = scan_folder(root, {})
    assert [e.path for e in result.changed if e.sha256] == [str(root / "real" / "x.jpg")]
    assert str(root / "real") not in dict(result.problems)


def test_a_symlink_to_a_folder_outside_the_tree_is_followed_once(tmp_path: Path):
    """Photos kept elsewhere and linked in are part of the dataset; two links to them do not double them, and a
    loop inside the linked folder still ends."""
    root = tmp_path / "photos"
    make_image(root / "own.jpg", 8, 8, seed=1)
    elsewhere = tmp_path / "elsewhere"
    make_image(elsewhere / "far.jpg", 8, 8, seed=2)
    make_image(elsewhere / "deep" / "farther.jpg", 8, 8, seed=3)
    os.symlink(elsewhere, elsewhere / "deep" / "back")  # a loop inside the linked folder
    os.symlink(elsewhere, root / "linked")
    os.symlink(elsewhere, root / "linked_again")
    result = scan_folder(root, {})
    hashed = {Path(e.path).name: e.path for e in result.changed if e.sha256}
    assert sorted(hashed) == ["far.jpg", "farther.jpg", "own.jpg"]
    assert hashed["far.jpg"].startswith(str(root))  # found through the link, under the Load folder
    assert len(result.hashes) == 3
    assert [p for p, problem in result.problems if "symlink loop" in problem] == [
        str(root / "linked" / "deep" / "back")
    ]


def test_empty_folder(tmp_path: Path):
    root = tmp_path / "empty"
    root.mkdir()
    result = scan_folder(root, {})
    assert (result.files, result.hashed, result.hashes, result.problems) == (0, 0, [], [])


def test_load_resolves_its_folder_and_checks_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos").mkdir()
    node = Load("photos")
    assert node.dir == tmp_path.resolve() / "photos"
    assert node.params["dir"] == str(tmp_path.resolve() / "photos")
    node.check_folder()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Load("missing").check_folder()
    (tmp_path / "file.jpg").write_bytes(b"")
    with pytest.raises(NotADirectoryError):
        Load("file.jpg").check_folder()
    with pytest.raises(WorkflowError, match="Load: dir must be a folder path"):
        Load("")


def test_files_hashed_ahead_are_not_hashed_again_unless_they_changed(tmp_path, monkeypatch):
    """`prehash` (run while Dagster loads) leaves hints; the scan uses a hint only for a file whose size and
    mtime are those it was hashed at."""
    from beprepared_dagster.nodes import load
    from beprepared_dagster.nodes.load import prehash

    a = make_image(tmp_path / "photos" / "a.jpg", 16, 12, seed=1)
    b = make_image(tmp_path / "photos" / "b.jpg", 16, 12, seed=2)
    known = prehash(tmp_path / "photos", {})
    assert {p: v[2] for p, v in known.items()} == {str(a): sha(a), str(b): sha(b)}

    make_image(b, 16, 12, seed=3)  # b changes after it was hashed ahead
    os.utime(b, ns=(known[str(b)][1] + 10**9, known[str(b)][1] + 10**9))
    hashed: list[str] = []
    real = load._hash_or_error
    monkeypatch.setattr(load, "_hash_or_error", lambda path: hashed.append(path) or real(path))
    result = scan_folder(tmp_path / "photos", {}, known=known)
    assert hashed == [str(b)]  # a's hint used; b's stale hint ignored
    assert {e.path: e.sha256 for e in result.changed} == {str(a): sha(a), str(b): sha(b)}


def test_hashing_in_child_processes_answers_as_the_scan_would_in_order(tmp_path):
    """`prehash` hashes in child interpreters (no lock shared with the imports): every path's answer equals
    what the scan's own hashing gives, in order, across several processes, for names with a newline or
    bytes that are not UTF-8, and for a file gone since it was listed."""
    from beprepared_dagster.nodes.load import _hash_or_error, hash_in_children

    folder = tmp_path / "photos"
    paths = [str(p) for p in make_images(folder, 150)]
    odd = [folder / "two\nlines.jpg", folder / os.fsdecode(b"caf\xe9.jpg")]
    for path in odd:
        path.write_bytes(b"not really a jpeg")
    paths += [str(p) for p in odd] + [str(folder / "gone.jpg")]
    answers = hash_in_children(paths, processes=3)
    assert answers == [_hash_or_error(p) for p in paths]
    assert answers[-1] == (None, "unreadable: No such file or directory")
    assert hash_in_children([], processes=2) == []
