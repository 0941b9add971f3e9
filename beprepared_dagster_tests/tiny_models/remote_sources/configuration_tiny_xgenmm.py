"""Tiny stand-in for xGen-MM (BLIP-3)'s remote configuration (a test fixture copied into a model folder)."""

from transformers import PretrainedConfig


class TinyXGenMMConfig(PretrainedConfig):
    model_type = "tiny_xgenmm"

    def __init__(self, vocab_size=512, hidden_size=32, pixel_dim=768, pad_id=0, eos_id=0, **kwargs):
        self.vocab_size, self.hidden_size, self.pixel_dim = vocab_size, hidden_size, pixel_dim
        self.pad_id, self.eos_id = pad_id, eos_id
        self.image_token_id = kwargs.pop("image_token_id", None)
        super().__init__(**kwargs)
