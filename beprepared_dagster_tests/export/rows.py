"""Helpers for the export tests: kept rows backed by real small JPEGs in an ObjectStore, and folder snapshots."""

from __future__ import annotations

from pathlib import Path

from beprepared_dagster.store.objects import ObjectStore
from beprepared_dagster.store.stages import KEPT, Row
from beprepared_dagster_tests.conftest import make_image


def image_row(
    objects: ObjectStore, tmp_path: Path, seed: int, path: str, seq: int = 0, size=(1024, 768), **props
) -> Row:
    """A kept row whose object is a distinct 16×12 JPEG; `width`/`height` props say `size` (for statistics)."""
    source = make_image(tmp_path / "src" / f"{seed}.jpg", 16, 12, seed=seed)
    object_id = objects.put_file(source)
    base = {
        "objectid": object_id,
        "original_path": path,
        "ext": ".jpg",
        "format": "JPEG",
        "width": size[0],
        "height": size[1],
    }
    return Row(object_id, seq, KEPT, props={**base, **props})


def with_props(row: Row, **props) -> Row:
    """The same row with some properties changed."""
    return Row(row.image_id, row.seq, row.status, props={**row.props, **props})


def snapshot(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """relative path → (inode, mtime_ns, content) of every file under `folder`, recursively."""
    return {
        str(p.relative_to(folder)): (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def leftovers(parent: Path) -> list[str]:
    """Staging or retired folders an export left behind beside its target."""
    return [p.name for p in parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name]
