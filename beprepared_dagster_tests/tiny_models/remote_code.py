"""Session-scoped tiny remote-code checkpoints standing in for Molmo v1 (`allenai/Molmo-7B-D-0924`) and xGen-MM
(`Salesforce/xgen-mm-phi3-mini-instruct-r-v1`): model folders whose config.json `auto_map` points at modeling
(and processor) files inside the folder, so transformers' trust_remote_code path really runs. The files
(`remote_sources/`) implement the API the real remote code has, on a tiny Llama; random weights, offline."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from beprepared_dagster_tests.tiny_models.llava import make_tokenizer

SOURCES = Path(__file__).parent / "remote_sources"
PHI3_SPECIAL = [
    "<unk>",
    "<s>",
    "<|endoftext|>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|end|>",
    "<pad>",
]


@dataclass(frozen=True)
class TinyRemoteCode:
    """Folders: `molmo` (processor.process + model.generate_from_batch), `xgenmm` (update_special_tokens,
    an anyres image processor, generate with a list of pixel_values)."""

    molmo: Path
    xgenmm: Path


def _write_model(out: Path, sources: list[str], config: dict, model_key: str) -> None:
    """Copy the code in, write config.json, then save random weights through the remote class itself."""
    from transformers import AutoConfig
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    out.mkdir(parents=True, exist_ok=True)
    for name in sources:
        shutil.copy(SOURCES / name, out / name)
    (out / "config.json").write_text(json.dumps(config))
    model_class = get_class_from_dynamic_module(config["auto_map"][model_key], out)
    model_class(AutoConfig.from_pretrained(out, trust_remote_code=True)).save_pretrained(out)


def build_molmo(out: Path) -> Path:
    tok = make_tokenizer(
        ["<|endoftext|>", "<pad>", "<im_start>", "<im_end>", "<im_patch>"],
        eos_token="<|endoftext|>",
        pad_token="<pad>",
    )
    processor = {"AutoProcessor": "preprocessing_tiny_molmo.TinyMolmoProcessor"}
    tok.save_pretrained(out)
    (out / "preprocessor_config.json").write_text(
        json.dumps({"auto_map": processor, "processor_class": "TinyMolmoProcessor"})
    )
    config = {
        "model_type": "tiny_molmo",
        "architectures": ["TinyMolmoForCausalLM"],
        "auto_map": {
            "AutoConfig": "configuration_tiny_molmo.TinyMolmoConfig",
            "AutoModelForCausalLM": "modeling_tiny_molmo.TinyMolmoForCausalLM",
        },
        "vocab_size": len(tok),
        "pad_id": tok.pad_token_id,
        "eos_id": tok.eos_token_id,
    }
    sources = ["configuration_tiny_molmo.py", "modeling_tiny_molmo.py", "preprocessing_tiny_molmo.py"]
    _write_model(out, sources, config, "AutoModelForCausalLM")
    return out


def build_xgenmm(out: Path) -> Path:
    tok = make_tokenizer(PHI3_SPECIAL, bos_token="<s>", eos_token="<|endoftext|>", pad_token="<pad>")
    tok.save_pretrained(out)
    (out / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "auto_map": {"AutoImageProcessor": "image_processing_tiny_blip_3.TinyBlip3ImageProcessor"},
                "image_processor_type": "TinyBlip3ImageProcessor",
            }
        )
    )
    config = {
        "model_type": "tiny_xgenmm",
        "architectures": ["TinyXGenMMForConditionalGeneration"],
        # Like the real checkpoint: only AutoModelForVision2Seq, which transformers 5 no longer has.
        "auto_map": {
            "AutoConfig": "configuration_tiny_xgenmm.TinyXGenMMConfig",
            "AutoModelForVision2Seq": "modeling_tiny_xgenmm.TinyXGenMMForConditionalGeneration",
        },
        "vocab_size": len(tok) + 1,  # room for the <image> token update_special_tokens adds
        "pad_id": tok.pad_token_id,
        "eos_id": tok.eos_token_id,
    }
    sources = ["configuration_tiny_xgenmm.py", "modeling_tiny_xgenmm.py", "image_processing_tiny_blip_3.py"]
    _write_model(out, sources, config, "AutoModelForVision2Seq")
    return out


@pytest.fixture(scope="session")
def tiny_remote_code(tmp_path_factory: pytest.TempPathFactory) -> TinyRemoteCode:
    """Two tiny remote-code model folders (Molmo-like and xGen-MM-like), about 0.3 MB each."""
    import torch

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("tiny-remote-code")
    return TinyRemoteCode(build_molmo(root / "tiny-molmo"), build_xgenmm(root / "tiny-xgenmm"))
