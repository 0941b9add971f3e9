"""MolmoCaption: it sets and logs trust_remote_code, captions every image through the real runtime on a tiny
remote-code folder (the checkpoint's own processor and modeling files), keeps the original's defaults, and
fails offline with the download command. Does not cover a Dagster run (shared with test_vlm_caption.py), the
real Molmo code or GPUs."""

from __future__ import annotations

import logging
import re

import pytest

from beprepared_dagster import MolmoCaption
from beprepared_dagster.errors import WorkflowError
from beprepared_dagster.models import loading
from beprepared_dagster_tests.conftest import make_image
from beprepared_dagster_tests.nodes.model_runs import run_node


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))


@pytest.mark.slow
def test_captions_every_image_in_batches_and_logs_trust_remote_code(tiny_remote_code, tmp_path, caplog):
    files = [make_image(tmp_path / f"{i}.jpg", 40 + 24 * (i % 2), 40, seed=i) for i in range(5)]
    node = MolmoCaption(model=str(tiny_remote_code.molmo), max_new_tokens=4, batch_size=3)
    with caplog.at_level(logging.WARNING):
        outcomes = run_node(node, files, log=logging.getLogger("molmo-test"))
    assert len(outcomes) == 5 and all(o.kept and o.set["caption"] for o in outcomes.values())
    assert any("trust_remote_code=True" in r.getMessage() for r in caplog.records)


def test_defaults_are_the_originals_and_remote_code_is_trusted():
    node = MolmoCaption()
    spec = node.model_spec()
    assert (spec.model, spec.trust_remote_code) == ("allenai/Molmo-7B-D-0924", True)
    assert node.full_prompt().startswith("Describe the contents and style of this image.")
    assert node.temperature == 0 and node.max_new_tokens == 512  # greedy, as the original


def test_a_missing_model_offline_says_how_to_download_it():
    with pytest.raises(loading.ModelNotFound, match=re.escape("hf download allenai/Molmo-7B-D-0924")):
        loading.resolve(MolmoCaption().model_spec())


def test_bad_parameters_fail_when_the_workflow_loads():
    with pytest.raises(WorkflowError, match=r"^MolmoCaption: quantize='2bit' is not accepted"):
        MolmoCaption(quantize="2bit")
