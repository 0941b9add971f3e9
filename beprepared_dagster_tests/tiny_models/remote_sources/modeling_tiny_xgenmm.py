"""Tiny stand-in for xGen-MM (BLIP-3)'s remote modeling code, with the API the real one has:
`update_special_tokens(tokenizer)` adds `<image>`, and `generate(pixel_values=[one tensor of crops per image],
input_ids, attention_mask, image_size=[(w, h), ...], **generate_kwargs)` returns only the new tokens."""

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedModel

from .configuration_tiny_xgenmm import TinyXGenMMConfig


class TinyXGenMMForConditionalGeneration(PreTrainedModel):
    config_class = TinyXGenMMConfig
    base_model_prefix = "model"

    def __init__(self, config):
        super().__init__(config)
        text = LlamaConfig(
            vocab_size=config.vocab_size,
            hidden_size=config.hidden_size,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=1024,
            pad_token_id=config.pad_id,
            eos_token_id=config.eos_id,
        )
        self.lm = LlamaForCausalLM(text)
        self.image_proj = torch.nn.Linear(config.pixel_dim, config.hidden_size)
        self.post_init()

    def update_special_tokens(self, tokenizer):
        tokenizer.add_tokens(["<image>"], special_tokens=True)
        self.config.image_token_id = tokenizer.convert_tokens_to_ids("<image>")
        return tokenizer

    @torch.no_grad()
    def generate(self, pixel_values, input_ids, attention_mask=None, image_size=None, **generate_kwargs):
        if not isinstance(pixel_values, list) or len(pixel_values) != input_ids.shape[0]:
            raise ValueError("pixel_values must be a list with one tensor of crops per image")
        if image_size is None or len(image_size) != len(pixel_values):
            raise ValueError("image_size must give (width, height) for every image")
        if self.config.image_token_id is None:
            raise ValueError("call update_special_tokens(tokenizer) first")
        embeds = self.lm.get_input_embeddings()(input_ids)
        for row, crops in enumerate(pixel_values):
            feature = self.image_proj(crops.flatten(1).to(self.image_proj.weight.dtype)).mean(dim=0)
            embeds[row, input_ids[row] == self.config.image_token_id] = feature.to(embeds.dtype)
        return self.lm.generate(inputs_embeds=embeds, attention_mask=attention_mask, **generate_kwargs)
