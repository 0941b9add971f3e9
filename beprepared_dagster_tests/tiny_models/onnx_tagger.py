"""A tiny WD tagger built with `onnx`, laid out like a SmilingWolf repository (`model.onnx`,
`selected_tags.csv`, `config.json`, README), whose tags follow the input's colours so tests can tell right
preprocessing from wrong.

The graph is mean over height and width of the NHWC input, one linear layer, sigmoid. Inputs are BGR 0–255:
- `red_theme` / `blue_theme` fire on red / blue images only if channel 2 is red and values are 0–255 (an RGB
  or 0–1 input tags a red image `blue_theme`, or nothing);
- `white_background` fires on bright images: a narrow red strip padded with white gets it, padded with black
  does not;
- `long_hair` (0.73), `1girl` (0.62), `^_^` (0.60) always pass the default 0.35; `looking_at_viewer` (0.27)
  never does;
- characters: `hatsune_miku_(vocaloid)` on blue images (~1.0), `kaname_madoka` always at 0.73 (under the
  default character threshold 0.85, over 0.35);
- ratings: `general` 0.95, `sensitive` rising with green (argmax on a green image).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SIZE = 64
# (name, category, weights on the B, G, R means (0–255), bias)
TAGS = [
    ("general", 9, (0.0, 0.0, 0.0), 3.0),
    ("sensitive", 9, (0.0, 0.04, 0.0), -6.0),
    ("questionable", 9, (0.0, 0.0, 0.0), -3.0),
    ("explicit", 9, (0.0, 0.0, 0.0), -4.0),
    ("1girl", 0, (0.0, 0.0, 0.0), 0.5),
    ("long_hair", 0, (0.0, 0.0, 0.0), 1.0),
    ("red_theme", 0, (-0.04, -0.04, 0.04), -2.0),
    ("blue_theme", 0, (0.04, -0.04, -0.04), -2.0),
    ("white_background", 0, (0.03, 0.03, 0.03), -18.0),
    ("^_^", 0, (0.0, 0.0, 0.0), 0.4055),
    ("looking_at_viewer", 0, (0.0, 0.0, 0.0), -1.0),
    ("hatsune_miku_(vocaloid)", 4, (0.04, 0.0, -0.04), -1.0),
    ("kaname_madoka", 4, (0.0, 0.0, 0.0), 1.0),
]


def build_tiny_wd_tagger(out: Path, size: int = SIZE, batch: int | None = None) -> Path:
    """Write the tiny tagger into `out`; `batch` fixes the ONNX batch dimension (None: dynamic)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    out.mkdir(parents=True, exist_ok=True)
    weights = np.array([w for _, _, w, _ in TAGS], dtype=np.float32).T  # (3, tags)
    bias = np.array([b for _, _, _, b in TAGS], dtype=np.float32)
    batch_dim = batch if batch else "batch"
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["input_1"], ["mean"], axes=[1, 2], keepdims=0),
            helper.make_node("MatMul", ["mean", "weights"], ["logits_nobias"]),
            helper.make_node("Add", ["logits_nobias", "bias"], ["logits"]),
            helper.make_node("Sigmoid", ["logits"], ["predictions_sigmoid"]),
        ],
        "tiny_wd_tagger",
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, [batch_dim, size, size, 3])],
        [helper.make_tensor_value_info("predictions_sigmoid", TensorProto.FLOAT, [batch_dim, len(TAGS)])],
        [numpy_helper.from_array(weights, "weights"), numpy_helper.from_array(bias, "bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, out / "model.onnx")
    rows = ["tag_id,name,category,count"]
    rows += [f"{1000 + i},{name},{category},{5000 - i}" for i, (name, category, _, _) in enumerate(TAGS)]
    (out / "selected_tags.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (out / "config.json").write_text(json.dumps({"architecture": "tiny", "num_classes": len(TAGS)}))
    (out / "README.md").write_text("Tiny random WD tagger for tests.\n")
    return out


@pytest.fixture(scope="session")
def tiny_wd_tagger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_wd_tagger(tmp_path_factory.mktemp("tiny-wd-tagger") / "wd-tiny-tagger-v3")
