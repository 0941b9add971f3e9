"""Tiny stand-in for Molmo v1's remote configuration (a test fixture copied into a model folder)."""

from transformers import PretrainedConfig


class TinyMolmoConfig(PretrainedConfig):
    model_type = "tiny_molmo"

    def __init__(self, vocab_size=512, hidden_size=32, patch_dim=192, pad_id=0, eos_id=0, **kwargs):
        self.vocab_size, self.hidden_size, self.patch_dim = vocab_size, hidden_size, patch_dim
        self.pad_id, self.eos_id = pad_id, eos_id
        super().__init__(**kwargs)
