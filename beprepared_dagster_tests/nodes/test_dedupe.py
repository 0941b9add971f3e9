"""Unit tests of ExactDedupe and FuzzyDedupe (`features`/`decide` with a real object store), on real photos
(the demo wallpapers, resized/re-encoded/rotated into near-duplicates) and on hand-made hashes for the
clustering rules; plus one headless run through the executor.

Not covered here: how the executor caches features and decisions (orchestration/test_set_stages.py), and
FuzzyDedupe's clip method on real embeddings (ClipEmbed arrives with the model nodes; here vectors are made up).
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from PIL import Image as PILImage

from beprepared_dagster import ExactDedupe, FuzzyDedupe, Load, Workflow
from beprepared_dagster.errors import BadImage, WorkflowError
from beprepared_dagster.nodes import Image, NodeContext, imaging
from beprepared_dagster.store import WorkspaceStore
from beprepared_dagster.store.objects import ObjectStore
from beprepared_dagster.store.stages import read_rows

DEMO = Path(__file__).resolve().parents[2] / "beprepared_dagster" / "demo" / "images"
DISTINCT = [
    "dune.jpg",
    "the-mouse.jpg",
    "calla.png",
    "goldfish.png",
    "elephants-small-variant.jpg",
    "aqua.jpg",
]


CTX = NodeContext(objects=None, log=logging.getLogger("test"))  # type: ignore[arg-type]


@pytest.fixture
def ctx(tmp_path: Path) -> NodeContext:
    return NodeContext(ObjectStore(tmp_path / "objects"), logging.getLogger("test"), tmp_path / "debug")


def put(ctx: NodeContext, data: bytes, name: str) -> Image:
    object_id = ctx.objects.put_bytes(data)
    return Image(
        {"image_id": object_id, "objectid": object_id, "original_path": f"/p/{name}", **imaging.probe(data)}
    )


def variant(name: str, scale: float = 1.0, quality: int = 90, rotated: bool = False) -> bytes:
    """A near-duplicate of a demo photo: resized, re-encoded as JPEG, optionally stored sideways with an
    EXIF orientation that displays it upright."""
    image = PILImage.open(DEMO / name).convert("RGB")
    image = image.resize(
        (round(image.width * scale), round(image.height * scale)), PILImage.Resampling.LANCZOS
    )
    out = io.BytesIO()
    if rotated:
        exif = PILImage.Exif()
        exif[0x0112] = 6  # "rotate 90° clockwise to display"
        image.transpose(PILImage.Transpose.ROTATE_90).save(out, "JPEG", quality=quality, exif=exif)
    else:
        image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def hashed(n: int, phash: int, width: int = 100, height: int = 100, **props) -> Image:
    """An image whose perceptual hash is given (as the executor's feature cache would merge it in)."""
    ident = f"{n:064x}"
    return Image(
        {
            "image_id": ident,
            "objectid": ident,
            "original_path": f"/p/{n}.jpg",
            "width": width,
            "height": height,
            "phash": f"{phash:016x}",
            **props,
        }
    )


def names(images: list[Image], outcomes) -> list[str]:
    return [Path(i.original_path).name for i, o in zip(images, outcomes, strict=True) if o.kept]


# --- ExactDedupe -------------------------------------------------------------------------------------------


def test_exact_dedupe_drops_later_copies_of_the_same_bytes():
    ids = ["a", "b", "a", "c", "b"]
    batch = [Image({"objectid": x * 64, "original_path": f"/p/{i}.jpg"}) for i, x in enumerate(ids)]
    outcomes = ExactDedupe().decide(batch, CTX)
    assert [o.kept for o in outcomes] == [True, True, False, True, False]
    assert (
        outcomes[2].reason == "duplicate: same bytes as 0.jpg"
        and outcomes[4].reason == "duplicate: same bytes as 1.jpg"
    )


def test_exact_dedupe_follows_the_order_sorted_gave():
    batch = [Image({"objectid": "a" * 64, "original_path": f"/p/{i}.jpg", "_order": 1 - i}) for i in range(2)]
    assert [o.kept for o in ExactDedupe().decide(batch, CTX)] == [False, True]


# --- FuzzyDedupe on real photos ----------------------------------------------------------------------------


def test_resized_reencoded_and_rotated_copies_are_dropped_and_originals_kept(ctx):
    batch = [put(ctx, (DEMO / n).read_bytes(), n) for n in DISTINCT]
    batch += [
        put(ctx, variant("dune.jpg", scale=0.5, quality=70), "dune-half.jpg"),
        put(ctx, variant("dune.jpg", rotated=True), "dune-sideways.jpg"),
        put(ctx, variant("the-mouse.jpg", scale=0.3, quality=40), "mouse-thumb.jpg"),
    ]
    node = FuzzyDedupe()
    outcomes = node.decide(batch, ctx)
    assert names(batch, outcomes) == DISTINCT
    reasons = {
        Path(i.original_path).name: o.reason for i, o in zip(batch, outcomes, strict=True) if not o.kept
    }
    assert reasons["dune-half.jpg"].startswith("near-duplicate: of dune.jpg (phash similarity ")
    assert reasons["dune-sideways.jpg"].startswith("near-duplicate: of dune.jpg")
    assert reasons["mouse-thumb.jpg"].startswith("near-duplicate: of the-mouse.jpg")


def test_the_largest_copy_is_kept_wherever_it_comes(ctx):
    batch = [
        put(ctx, variant("calla.png", scale=0.25), "calla-small.jpg"),
        put(ctx, variant("calla.png", scale=0.5), "calla-medium.jpg"),
        put(ctx, (DEMO / "calla.png").read_bytes(), "calla.png"),
    ]
    assert names(batch, FuzzyDedupe().decide(batch, ctx)) == ["calla.png"]
    assert names(batch[::-1], FuzzyDedupe().decide(batch[::-1], ctx)) == ["calla.png"]


def test_dhash_method_finds_the_same_duplicates(ctx):
    batch = [
        put(ctx, (DEMO / "dune.jpg").read_bytes(), "dune.jpg"),
        put(ctx, variant("dune.jpg", 0.5), "half.jpg"),
    ]
    batch.append(put(ctx, (DEMO / "aqua.jpg").read_bytes(), "aqua.jpg"))
    node = FuzzyDedupe(method="dhash")
    assert node.features_key() != FuzzyDedupe().features_key()
    assert "dhash" in node.features(batch[:1], ctx)[0]
    assert names(batch, node.decide(batch, ctx)) == ["dune.jpg", "aqua.jpg"]


def test_undecodable_bytes_raise_bad_image_from_features(ctx):
    broken = Image({"objectid": ctx.objects.put_bytes(b"\x89PNG\r\n\x1a\nnope"), "width": 10, "height": 10})
    with pytest.raises(BadImage):
        FuzzyDedupe().features([broken], ctx)


# --- clustering rules (hand-made hashes) -------------------------------------------------------------------


def test_threshold_is_the_share_of_agreeing_bits():
    base, six, seven = hashed(0, 0, 200, 200), hashed(1, 0b111111), hashed(2, 0b1111111 << 20)
    outcomes = FuzzyDedupe(threshold=0.9).decide([base, six, seven], CTX)
    assert [o.kept for o in outcomes] == [True, False, True]  # 6 of 64 bits differ: duplicate; 7: not
    assert "phash similarity 0.906" in outcomes[1].reason
    assert FuzzyDedupe(threshold=0.9).max_distance == 6 and FuzzyDedupe(threshold=1.0).max_distance == 0


def test_no_chaining_every_dropped_image_is_close_to_the_kept_one():
    """A≈B and B≈C but A and C are 12 bits apart: the original's union-find dropped C too."""
    a, b, c = hashed(0, 0, 300, 300), hashed(1, 0b111111, 200, 200), hashed(2, 0b111111111111, 100, 100)
    outcomes = FuzzyDedupe().decide([a, b, c], CTX)
    assert [o.kept for o in outcomes] == [True, False, True]


def test_equal_sizes_keep_the_first_in_dataset_order():
    batch = [hashed(0, 1), hashed(1, 1), hashed(2, 1)]
    assert [o.kept for o in FuzzyDedupe().decide(batch, CTX)] == [True, False, False]
    reordered = [i.with_props(_order=2 - n) for n, i in enumerate(batch)]
    assert [o.kept for o in FuzzyDedupe().decide(reordered, CTX)] == [False, False, True]


def test_many_images_compare_in_blocks(monkeypatch):
    """Blocks must not lose pairs that straddle a block boundary."""
    import beprepared_dagster.nodes.dedupe as dedupe

    monkeypatch.setattr(dedupe, "_BLOCK_ELEMENTS", 50)
    batch = [hashed(n, (n // 2) * 0x0101010101010101, 100 + n % 2, 100) for n in range(40)]
    outcomes = FuzzyDedupe(threshold=1.0).decide(batch, CTX)
    assert [o.kept for o in outcomes] == [n % 2 == 1 for n in range(40)]  # of each pair, the wider one


def test_clip_method_uses_cosine_of_the_clip_property():
    batch = [
        hashed(0, 0, 300, 300, clip=[1.0, 0.0, 0.0]),
        hashed(1, 0, clip=[0.99, 0.1, 0.0]),  # cosine 0.995
        hashed(2, 0, clip=[0.8, 0.6, 0.0]),  # cosine 0.8
    ]
    node = FuzzyDedupe(method="clip")
    assert node.features_key() is None and node.params["threshold"] == 0.95 and "clip" in node.reads
    assert [o.kept for o in node.decide(batch, CTX)] == [True, False, True]
    with pytest.raises(
        ValueError, match="needs the `clip` embedding that ClipEmbed stores; 0.jpg has none: add"
    ):
        node.decide([hashed(0, 0)], CTX)


# --- the debug page ----------------------------------------------------------------------------------------


def test_debug_page_shows_each_group_with_links_to_the_images(ctx):
    batch = [
        put(ctx, (DEMO / "dune.jpg").read_bytes(), "dune.jpg"),
        put(ctx, variant("dune.jpg", 0.5), "dune-half.jpg"),
    ]
    batch.append(put(ctx, (DEMO / "aqua.jpg").read_bytes(), "aqua<&>.jpg"))
    FuzzyDedupe().decide(batch, ctx)
    page = (ctx.debug_dir / "fuzzy_dedupe.html").read_text()
    assert "1 group(s)" in page and "dune.jpg · 1024×640 · kept" in page and "dune-half.jpg · 512×320" in page
    assert "aqua" not in page  # no group, not shown
    sources = [part.split('"')[0] for part in page.split('src="')[1:]]
    assert len(sources) == 2 and all((ctx.debug_dir / s).resolve().is_file() for s in sources)


def test_debug_page_is_optional(ctx, tmp_path):
    batch = [hashed(0, 0), hashed(1, 0)]
    FuzzyDedupe(debug_html=None).decide(batch, ctx)
    FuzzyDedupe().decide(batch, NodeContext(ctx.objects, ctx.log, None))
    assert not ctx.debug_dir.exists()


# --- parameters --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "clip-large"}, "method 'clip-large' is not one of phash, dhash, clip"),
        ({"threshold": 0}, "threshold must be a similarity in (0, 1]"),
        ({"threshold": 1.5}, "threshold must be a similarity in (0, 1]"),
        ({"threshold": "high"}, "threshold must be a similarity in (0, 1]"),
        ({"debug_html": "../escape.html"}, "debug_html must be a file name (no folders)"),
    ],
)
def test_bad_parameters_name_the_parameter(kwargs, message):
    with pytest.raises(WorkflowError) as info:
        FuzzyDedupe(**kwargs)
    assert str(info.value).startswith(f"FuzzyDedupe: {message}")


def test_fingerprint_ignores_the_debug_page_and_resolves_the_default_threshold():
    assert FuzzyDedupe().fingerprint == FuzzyDedupe(threshold=0.9, debug_html="other.html").fingerprint
    assert FuzzyDedupe().fingerprint != FuzzyDedupe(threshold=0.95).fingerprint


# --- through the executor ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_fuzzy_dedupe_through_a_headless_run(tmp_path: Path, workspace_dir: Path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("dune.jpg", "the-mouse.jpg", "goldfish.png"):
        (folder / name).write_bytes((DEMO / name).read_bytes())
    (folder / "dune-small.jpg").write_bytes(variant("dune.jpg", 0.4, quality=60))
    Workflow("dedupe", Load(folder) >> FuzzyDedupe() >> ExactDedupe(), workspace=workspace_dir).run()
    with WorkspaceStore(workspace_dir).db.connect() as conn:
        rows = {
            Path(r[0].props["original_path"]).name: r[0]
            for r in read_rows(conn, "dedupe", "fuzzy_dedupe").values()
        }
    assert sorted(n for n, r in rows.items() if r.status == "kept") == [
        "dune.jpg",
        "goldfish.png",
        "the-mouse.jpg",
    ]
    assert rows["dune-small.jpg"].reason.startswith("near-duplicate: of dune.jpg")
    page = workspace_dir / "debug" / "dedupe" / "fuzzy_dedupe" / "fuzzy_dedupe.html"
    assert "dune-small.jpg" in page.read_text()
