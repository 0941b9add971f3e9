"""XGenMMCaption: it sets and logs trust_remote_code, captions every image through the real runtime on a tiny
remote-code folder (model class from `auto_map`, since transformers 5 has no AutoModelForVision2Seq), and its
crop band is a visible, validated option that is part of the cache key. Does not cover a Dagster run (shared
with test_vlm_caption.py), the real xGen-MM code or GPUs."""

from __future__ import annotations

import logging

import pytest

from beprepared_dagster import XGenMMCaption
from beprepared_dagster.errors import WorkflowError
from beprepared_dagster_tests.conftest import make_image
from beprepared_dagster_tests.nodes.model_runs import run_node


@pytest.mark.slow
def test_captions_every_image_and_logs_trust_remote_code(tiny_remote_code, tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    files = [make_image(tmp_path / f"{i}.jpg", 48, 32 + 16 * i, seed=i) for i in range(4)]
    node = XGenMMCaption(model=str(tiny_remote_code.xgenmm), max_new_tokens=4, crop=None, batch_size=2)
    with caplog.at_level(logging.WARNING):
        outcomes = run_node(node, files, log=logging.getLogger("xgenmm-test"))
    assert len(outcomes) == 4 and all(o.kept and o.set["caption"] for o in outcomes.values())
    assert {o.set["caption_model"] for o in outcomes.values()} == {str(tiny_remote_code.xgenmm)}
    assert any("trust_remote_code=True" in r.getMessage() for r in caplog.records)


def test_the_originals_hidden_crop_is_the_visible_default():
    node = XGenMMCaption()
    assert node.backend_args()["crop"] == [0.05, 0.91]
    assert XGenMMCaption(crop=None).backend_args()["crop"] is None
    assert XGenMMCaption(crop=None).fingerprint != node.fingerprint
    assert (
        node.model_spec().trust_remote_code
        and node.model_spec().model == "Salesforce/xgen-mm-phi3-mini-instruct-r-v1"
    )
    assert node.temperature == 0  # greedy, as the original


@pytest.mark.parametrize(
    ("crop", "message"),
    [
        ((0.9, 0.1), "need 0 <= top < bottom <= 1"),
        ((0.0, 1.5), "need 0 <= top < bottom <= 1"),
        ("top", "crop must be (top, bottom) fractions"),
        ((0.1,), "crop must be (top, bottom) fractions"),
    ],
)
def test_a_bad_crop_fails_when_the_workflow_loads(crop, message):
    with pytest.raises(
        WorkflowError, match=r"^XGenMMCaption: .*" + message.replace("(", r"\(").replace(")", r"\)")
    ):
        XGenMMCaption(crop=crop)
