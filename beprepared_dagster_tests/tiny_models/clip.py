"""Session-scoped tiny CLIP and SigLIP checkpoints (full text + vision models, as the hub repositories hold
them; random weights, 32×32 input) and aesthetic heads in the layouts the product reads, built offline."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECTION = 16  # the tiny CLIP's embedding size (ViT-L/14: 768)
SIGLIP_HIDDEN = 32  # the tiny SigLIP's embedding size


def _text(**extra):
    return dict(
        vocab_size=99,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=16,
        **extra,
    )


def _vision():
    return dict(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
    )


def build_tiny_clip(out: Path) -> Path:
    import torch
    import transformers as T

    torch.manual_seed(0)
    config = T.CLIPConfig(
        text_config=_text(bos_token_id=0, eos_token_id=1), vision_config=_vision(), projection_dim=PROJECTION
    )
    T.CLIPModel(config).save_pretrained(out)
    T.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        out
    )
    return out


def build_tiny_siglip(out: Path) -> Path:
    import torch
    import transformers as T

    torch.manual_seed(0)
    T.SiglipModel(T.SiglipConfig(text_config=_text(), vision_config=_vision())).save_pretrained(out)
    T.SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(out)
    return out


def build_heads(out: Path, dim: int = PROJECTION) -> dict[str, Path]:
    """v1 (`predictor.*` in a safetensors folder), a bare LAION linear `.pth`, a v2 linear-MLP `.pth`."""
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(1)
    out.mkdir(parents=True, exist_ok=True)
    v1 = out / "v1"
    v1.mkdir(exist_ok=True)
    save_file(
        {"predictor.weight": torch.randn(1, dim), "predictor.bias": torch.tensor([5.0])},
        v1 / "model.safetensors",
    )
    (v1 / "config.json").write_text("{}")
    linear = out / "sa_0_4_linear.pth"
    torch.save({"weight": torch.randn(1, dim), "bias": torch.tensor([4.0])}, linear)
    sizes = [dim, 1024, 128, 64, 16, 1]
    v2 = {}
    for index, (a, b) in zip([0, 2, 4, 6, 7], zip(sizes, sizes[1:], strict=False), strict=True):
        v2[f"layers.{index}.weight"] = torch.randn(b, a) * 0.05
        v2[f"layers.{index}.bias"] = torch.zeros(b)
    mlp = out / "v2-linearMSE.pth"
    torch.save(v2, mlp)
    return {"v1": v1, "linear": linear, "v2": mlp}


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="session")
def tiny_siglip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_siglip(tmp_path_factory.mktemp("tiny-siglip"))


@pytest.fixture(scope="session")
def aesthetic_heads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_heads(tmp_path_factory.mktemp("aesthetic-heads"))
