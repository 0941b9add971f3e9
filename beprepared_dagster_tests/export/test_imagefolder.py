"""SaveImageFolder's layout read back with Hugging Face `datasets`' imagefolder loader (the way diffusers'
example scripts load it), plus a reader written to the published spec (`file_name` relative to
`metadata.jsonl`, one line per image, every image listed once).

`datasets` is a dev dependency; the loader runs offline with its cache in the test's temp folder.

Not covered here: pushing to the Hub, `metadata.csv` / parquet metadata.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from beprepared_dagster.export.atomic import ExportError
from beprepared_dagster.export.dataset import export_dataset
from beprepared_dagster.export.imagefolder import METADATA
from beprepared_dagster.nodes import SaveImageFolder
from beprepared_dagster.store.objects import ObjectStore
from beprepared_dagster_tests.export.rows import image_row, snapshot


@pytest.fixture
def objects(tmp_path: Path) -> ObjectStore:
    return ObjectStore(tmp_path / "objects")


@pytest.fixture
def load_imagefolder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`load_dataset("imagefolder", data_dir=…)`, offline, caching under tmp_path."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    datasets = pytest.importorskip("datasets")

    def load(data_dir: Path):
        return datasets.load_dataset(
            "imagefolder", data_dir=str(data_dir), cache_dir=str(tmp_path / "hf_cache")
        )

    return load


def export(target: Path, rows, objects, **args):
    return export_dataset(target, rows, objects, SaveImageFolder(**args), "hf test")


def read_metadata(split_dir: Path) -> list[dict]:
    """The spec: one JSON object per line; `file_name` relative to the metadata file; each image once."""
    records = [json.loads(line) for line in (split_dir / METADATA).read_text(encoding="utf-8").splitlines()]
    names = [r["file_name"] for r in records]
    assert len(names) == len(set(names))
    images = {p.name for p in split_dir.iterdir() if p.suffix in (".jpg", ".png", ".webp")}
    assert set(names) == images
    return records


def test_loads_with_datasets_imagefolder(objects, tmp_path, load_imagefolder):
    rows = [
        image_row(
            objects, tmp_path, i, f"/p/{i}.jpg", size=(1024 + i, 768), caption=f"photo {i}", tags=["a_b", "c"]
        )
        for i in range(4)
    ]
    target = tmp_path / "hf"
    report = export(target, rows, objects, properties=["width", "height", "tags"], trigger="ohwx")
    assert report.images == 4 and report.captions == 4
    dataset = load_imagefolder(target)
    assert list(dataset) == ["train"]
    train = dataset["train"]
    assert train.num_rows == 4
    assert set(train.column_names) == {"image", "text", "width", "height", "tags"}
    got = sorted((r["text"], r["width"], r["height"], tuple(r["tags"]), r["image"].size) for r in train)
    assert got == [(f"ohwx, photo {i}", 1024 + i, 768, ("a_b", "c"), (16, 12)) for i in range(4)]


def test_metadata_follows_the_spec(objects, tmp_path):
    rows = [image_row(objects, tmp_path, i, f"/p/{i}.jpg", caption=f"photo {i}") for i in range(3)]
    rows.append(image_row(objects, tmp_path, 9, "/p/9.jpg"))  # no caption
    export(tmp_path / "hf", rows, objects, split="train", caption_column="prompt")
    records = read_metadata(tmp_path / "hf" / "train")
    assert sorted((r["prompt"] or "") for r in records) == ["", "photo 0", "photo 1", "photo 2"]
    for record in records:
        image = tmp_path / "hf" / "train" / record["file_name"]
        assert image.read_bytes() in {objects.read(r.props["objectid"]) for r in rows}


def test_several_captions_as_a_list_column(objects, tmp_path, load_imagefolder):
    rows = [
        image_row(objects, tmp_path, 1, "/p/a.jpg", caption=["a cat", "a small cat"]),
        image_row(objects, tmp_path, 2, "/p/b.jpg", caption="a dog"),
    ]
    export(tmp_path / "hf", rows, objects, multi_caption="lines")
    train = load_imagefolder(tmp_path / "hf")["train"]
    # diffusers' text-to-image script picks one caption at random when the column holds a list.
    assert sorted(map(tuple, train["text"])) == [("a cat", "a small cat"), ("a dog",)]


def test_several_captions_as_files_are_rows_of_their_own(objects, tmp_path, load_imagefolder):
    rows = [image_row(objects, tmp_path, 1, "/p/a.jpg", caption=["a cat", "a small cat"])]
    export(tmp_path / "hf", rows, objects)
    train = load_imagefolder(tmp_path / "hf")["train"]
    assert sorted(train["text"]) == ["a cat", "a small cat"]


def test_mixed_property_types_are_refused_naming_the_property(objects, tmp_path):
    good = [image_row(objects, tmp_path, i, f"/p/{i}.jpg", score=0.5 + i) for i in range(2)]
    export(tmp_path / "hf", good, objects, properties=["score"])
    before = snapshot(tmp_path / "hf")
    bad = [*good, image_row(objects, tmp_path, 5, "/p/5.jpg", score="high")]
    with pytest.raises(ExportError, match="property 'score' holds values of different types"):
        export(tmp_path / "hf", bad, objects, properties=["score"])
    assert snapshot(tmp_path / "hf") == before


def test_ints_and_floats_mix_in_one_column(objects, tmp_path, load_imagefolder):
    rows = [
        image_row(objects, tmp_path, 1, "/p/a.jpg", score=1),
        image_row(objects, tmp_path, 2, "/p/b.jpg", score=0.5),
    ]
    export(tmp_path / "hf", rows, objects, properties=["score"])
    assert sorted(load_imagefolder(tmp_path / "hf")["train"]["score"]) == [0.5, 1.0]
