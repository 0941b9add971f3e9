"""Tiny stand-in for Molmo v1's remote modeling code, with the API the real one has: `generate_from_batch(batch,
generation_config, **kwargs)` over a batch padded with -1 on the right (input_ids, images, image_input_idx,
image_masks), returning the prompt ids followed by the new tokens."""

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedModel

from .configuration_tiny_molmo import TinyMolmoConfig


class TinyMolmoForCausalLM(PreTrainedModel):
    config_class = TinyMolmoConfig
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
        self.image_proj = torch.nn.Linear(config.patch_dim, config.hidden_size)
        self.post_init()

    @torch.no_grad()
    def generate_from_batch(self, batch, generation_config=None, **kwargs):
        input_ids = batch["input_ids"]
        if input_ids.dim() != 2:
            raise ValueError("input_ids must be batched: (batch, sequence)")
        valid = input_ids != -1
        embeds = self.lm.get_input_embeddings()(input_ids.clamp(min=0))
        features = self.image_proj(batch["images"].to(self.image_proj.weight.dtype))
        index = batch["image_input_idx"]
        rows = torch.arange(index.shape[0], device=index.device)[:, None, None].expand_as(index)
        real = (index >= 0) & (batch["image_masks"] > 0)
        embeds[rows[real], index[real]] = embeds[rows[real], index[real]] + features[real].to(embeds.dtype)
        # Right padding → left padding for the language model.
        lengths = valid.sum(dim=1)
        width = int(lengths.max())
        packed = embeds.new_zeros((embeds.shape[0], width, embeds.shape[2]))
        mask = torch.zeros((embeds.shape[0], width), dtype=torch.long, device=embeds.device)
        for row, length in enumerate(lengths.tolist()):
            packed[row, width - length :] = embeds[row, valid[row]]
            mask[row, width - length :] = 1
        new = self.lm.generate(
            inputs_embeds=packed, attention_mask=mask, generation_config=generation_config, **kwargs
        )
        return torch.cat([input_ids, new], dim=1)
