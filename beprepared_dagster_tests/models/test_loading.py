"""Finding models: a local folder (checked for the family's files), a hub id in the Hugging Face cache (its
commit recorded), and the offline / not-downloaded message. No network: HF_HUB_OFFLINE=1 throughout.

Does not cover a real download (no network here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from beprepared_dagster.models.api import ModelSpec
from beprepared_dagster.models.loading import ModelNotFound, resolve

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def offline_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def test_a_local_folder_resolves_to_itself_without_a_commit(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"x")
    resolved = resolve(ModelSpec(str(folder), required_files=("config.json", "*.safetensors")))
    assert resolved.path == folder and resolved.commit is None and resolved.label == str(folder)


def test_a_folder_that_is_not_a_model_of_the_family_lists_what_is_missing(tmp_path):
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    spec = ModelSpec(
        str(folder), family="LLaVA", required_files=("config.json", "*.safetensors", "tokenizer.json")
    )
    with pytest.raises(
        ModelNotFound, match=r"is not a LLaVA model folder: missing \*\.safetensors, tokenizer\.json"
    ):
        resolve(spec)


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(ModelNotFound, match="does not exist"):
        resolve(ModelSpec(str(tmp_path / "nope")))


def test_a_hub_id_in_the_cache_resolves_to_its_snapshot_and_commit(offline_cache):
    repo = offline_cache / "models--org--tiny"
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    resolved = resolve(ModelSpec("org/tiny"))
    assert resolved.path == snapshot and resolved.commit == COMMIT
    assert resolved.label == f"org/tiny@{COMMIT}"


def test_offline_and_not_downloaded_says_where_it_looked_and_how_to_get_it(offline_cache):
    spec = ModelSpec("fancyfeast/llama-joycaption-beta-one-hf-llava", revision="v1")
    with pytest.raises(ModelNotFound) as caught:
        resolve(spec)
    message = str(caught.value)
    assert "fancyfeast/llama-joycaption-beta-one-hf-llava (revision v1)" in message
    assert str(offline_cache) in message
    assert "hf download fancyfeast/llama-joycaption-beta-one-hf-llava --revision v1" in message
    assert "HF_HUB_OFFLINE" in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_space_checkpoint_gets_the_space_download_command():
    spec = ModelSpec(
        "fancyfeast/joy-caption-alpha-two", repo_type="space", allow_patterns=("cgrkzexw-599808/*",)
    )
    with pytest.raises(ModelNotFound, match=r"--repo-type space --include 'cgrkzexw-599808/\*'"):
        resolve(spec)
