"""SaveKohya's layout read back the way kohya sd-scripts reads it.

`read_like_sd_scripts` follows sd-scripts' published behaviour (train_util / config_util): `train_data_dir`'s
sub-folders named `<int>_<class tokens>` (split on the first `_`; others ignored), images directly inside
with `.png .jpg .jpeg .webp .bmp`, the caption from `<stem><caption_extension>` (first line, or every line
with `enable_wildcard`), the class tokens for an image without one. `dataset.toml` is parsed with tomllib
and checked against config_util's schema keys.

Not covered here: training itself, regularisation folders (`reg_data_dir`), the fine-tune `metadata_file`
style.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from beprepared_dagster.export.dataset import export_dataset
from beprepared_dagster.export.kohya import DATASET_TOML, concept_name, steps_per_epoch
from beprepared_dagster.nodes import SaveKohya
from beprepared_dagster.store.objects import ObjectStore
from beprepared_dagster_tests.export.rows import image_row

SD_IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
# sd-scripts' config_util schema (DreamBooth style): the keys each section accepts.
SUBSET_KEYS = {
    "image_dir", "num_repeats", "class_tokens", "caption_extension", "is_reg", "keep_tokens", "cache_info",
    "shuffle_caption", "enable_wildcard", "keep_tokens_separator", "secondary_separator", "color_aug",
    "flip_aug", "face_crop_aug_range", "random_crop", "caption_prefix", "caption_suffix",
    "token_warmup_min", "token_warmup_step", "caption_dropout_rate", "caption_dropout_every_n_epochs",
    "caption_tag_dropout_rate",
}  # fmt: skip
DATASET_KEYS = {
    "batch_size", "bucket_no_upscale", "bucket_reso_steps", "enable_bucket", "max_bucket_reso",
    "min_bucket_reso", "resolution", "network_multiplier",
} | SUBSET_KEYS - {"image_dir", "is_reg"}  # fmt: skip
GENERAL_KEYS = DATASET_KEYS


def read_caption(image: Path, caption_extension: str, wildcard: bool) -> list[str] | None:
    caption_file = image.with_name(image.stem + caption_extension)
    if not caption_file.is_file():
        return None
    lines = caption_file.read_text(encoding="utf-8").splitlines()
    assert lines, f"sd-scripts refuses an empty caption file: {caption_file}"
    return [line.strip() for line in lines if line.strip()] if wildcard else [lines[0].strip()]


def read_subset(
    folder: Path, repeats: int, class_tokens: str, caption_ext: str, wildcard: bool
) -> list[tuple]:
    images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SD_IMAGE_EXTENSIONS)
    return [(p, repeats, read_caption(p, caption_ext, wildcard) or [class_tokens]) for p in images]


def read_like_sd_scripts(
    train_data_dir: Path, caption_ext: str = ".txt", wildcard: bool = False
) -> list[tuple]:
    """(image, repeats, captions) per image, from the folder names (no dataset config)."""
    found = []
    for sub in sorted(p for p in train_data_dir.iterdir() if p.is_dir()):
        prefix, _, class_tokens = sub.name.partition("_")
        if not prefix.isdigit():
            continue  # sd-scripts warns and ignores a folder without a repeat count
        found += read_subset(sub, int(prefix), class_tokens, caption_ext, wildcard)
    return found


def read_dataset_toml(path: Path) -> list[tuple]:
    """(image, repeats, captions) per image, from `--dataset_config` (folder names are not read)."""
    config = tomllib.loads(path.read_text(encoding="utf-8"))
    assert set(config) <= {"general", "datasets"}
    general = config["general"]
    assert set(general) <= GENERAL_KEYS, set(general) - GENERAL_KEYS
    found = []
    for dataset in config["datasets"]:
        assert set(dataset) - {"subsets"} <= DATASET_KEYS
        for subset in dataset["subsets"]:
            assert set(subset) <= SUBSET_KEYS, set(subset) - SUBSET_KEYS
            settings = {**general, **{k: v for k, v in dataset.items() if k != "subsets"}, **subset}
            assert isinstance(settings["num_repeats"], int) and isinstance(settings["class_tokens"], str)
            folder = Path(settings["image_dir"])
            assert folder.is_absolute() and folder.is_dir()
            ext, wildcard = (
                settings.get("caption_extension", ".caption"),
                settings.get("enable_wildcard", False),
            )
            found += read_subset(folder, settings["num_repeats"], settings["class_tokens"], ext, wildcard)
    return found


@pytest.fixture
def objects(tmp_path: Path) -> ObjectStore:
    return ObjectStore(tmp_path / "objects")


def export(target: Path, rows, objects, **args):
    return export_dataset(target, rows, objects, SaveKohya(**args), "kohya test")


def test_folders_repeats_and_captions_as_sd_scripts_reads_them(objects, tmp_path):
    rows = [
        image_row(objects, tmp_path, 1, "/p/a.jpg", caption="a dog on a beach", concept="ohwx dog"),
        image_row(objects, tmp_path, 2, "/p/b.jpg", caption="a dog in snow", concept="ohwx dog"),
        image_row(objects, tmp_path, 3, "/p/c.jpg", concept="dog"),  # no caption: kohya uses the class tokens
        image_row(objects, tmp_path, 4, "/p/d.jpg", caption="a cat", concept=None),
    ]
    target = tmp_path / "train"
    report = export(target, rows, objects, repeats={"ohwx dog": 10, "dog": 2}, concept_prop="concept")
    read = read_like_sd_scripts(target)
    by_folder = {(p.parent.name, tuple(c)) for p, _, c in read}
    assert by_folder == {
        ("10_ohwx dog", ("a dog on a beach",)),
        ("10_ohwx dog", ("a dog in snow",)),
        ("2_dog", ("dog",)),
        ("1_img", ("a cat",)),  # no concept: the default class tokens, one repeat
    }
    images = {p for p, _, _ in read}
    assert {p.read_bytes() for p in images} == {objects.read(r.props["objectid"]) for r in rows}
    assert sum(repeats for _, repeats, _ in read) == 23  # steps per epoch = Σ repeats × images
    assert report.images == 4 and not (target / DATASET_TOML).exists()


def test_trigger_and_tags_render_into_the_captions_and_name_the_folder(objects, tmp_path):
    rows = [image_row(objects, tmp_path, 1, "/p/a.jpg", caption="a girl", tags=["1girl", "long_hair"])]
    export(tmp_path / "t", rows, objects, repeats=5, trigger="ohwx", tags_prop="tags", escape_parens=True)
    [(image, repeats, captions)] = read_like_sd_scripts(tmp_path / "t")
    assert image.parent.name == "5_ohwx" and repeats == 5
    assert captions == ["ohwx, 1girl, long hair, a girl"]


def test_dataset_toml_agrees_with_the_folders(objects, tmp_path):
    rows = [
        image_row(objects, tmp_path, i, f"/p/{i}.jpg", caption=f"c{i}", concept="cat" if i % 2 else "dog")
        for i in range(5)
    ]
    target = tmp_path / "train"
    export(
        target, rows, objects, repeats={"cat": 3}, concept_prop="concept", dataset_toml=True,
        trigger="ohwx", caption_ext=".caption", resolution=[1024, 768],
    )  # fmt: skip
    from_toml = read_dataset_toml(target / DATASET_TOML)
    from_folders = read_like_sd_scripts(target, ".caption")
    assert sorted(from_toml) == sorted(from_folders)
    config = tomllib.loads((target / DATASET_TOML).read_text())
    assert config["general"]["caption_extension"] == ".caption"
    assert config["general"]["keep_tokens"] == 1  # the trigger stays first when captions are shuffled
    assert config["datasets"][0]["resolution"] == [1024, 768]
    repeats = {Path(s["image_dir"]).name: s["num_repeats"] for s in config["datasets"][0]["subsets"]}
    assert repeats == {"3_cat": 3, "1_dog": 1}


def test_several_captions_per_image_as_lines_need_and_get_enable_wildcard(objects, tmp_path):
    rows = [image_row(objects, tmp_path, 1, "/p/a.jpg", caption=["a cat", "a small cat on a mat"])]
    target = tmp_path / "train"
    export(target, rows, objects, multi_caption="lines", dataset_toml=True)
    [(_, _, captions)] = read_dataset_toml(target / DATASET_TOML)
    assert captions == ["a cat", "a small cat on a mat"]
    # Without the TOML's enable_wildcard, sd-scripts would train on the first line only.
    [(_, _, first_only)] = read_like_sd_scripts(target)
    assert first_only == ["a cat"]


def test_several_captions_as_files_work_without_any_flag(objects, tmp_path):
    rows = [image_row(objects, tmp_path, 1, "/p/a.jpg", caption=["a cat", "a small cat on a mat"])]
    export(tmp_path / "train", rows, objects)
    read = read_like_sd_scripts(tmp_path / "train")
    assert sorted(c for _, _, [c] in read) == ["a cat", "a small cat on a mat"]
    a, b = (p for p, _, _ in read)
    assert a.stat().st_ino == b.stat().st_ino  # one image's copies are hard links of each other


def test_dataset_toml_escapes_strings(objects, tmp_path):
    rows = [image_row(objects, tmp_path, 1, "/p/a.jpg", concept='say "hi" \\ 名前 😀')]
    target = tmp_path / 'odd "dir" 名'
    export(target, rows, objects, concept_prop="concept", dataset_toml=True)
    [(image, _, captions)] = read_dataset_toml(target / DATASET_TOML)
    assert image.is_file() and captions == ['say "hi" 名前 😀']  # backslash is not allowed in a folder name


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("a/b", "a b"),
        ("../../etc", "etc"),
        (".hidden", "hidden"),
        (["first", "x"], "first"),
        ("", None),
        (None, None),
    ],
)
def test_concept_names_are_safe_folder_names(value, name):
    assert concept_name(value) == name


def test_steps_per_epoch(objects, tmp_path):
    from beprepared_dagster.export.captions import CaptionSpec
    from beprepared_dagster.export.entries import plan_entries
    from beprepared_dagster.export.kohya import folder_namer

    node = SaveKohya(repeats={"a": 4}, concept_prop="c")
    rows = [image_row(objects, tmp_path, i, f"/p/{i}.jpg", c="a" if i < 2 else "b") for i in range(3)]
    assert steps_per_epoch(plan_entries(rows, CaptionSpec(), folder_namer(node))) == 4 + 4 + 1
