"""JoyCaption Alpha One / Alpha Two: the original's three-part pipeline, which transformers has no class for.

A checkpoint folder, laid out like the original's download from the Hugging Face space, holds
`clip_model.pt` (fine-tuned SigLIP vision weights), `image_adapter.pt` (linear1 → GELU → linear2, plus three
learned tokens: image start, image end, end of turn) and `text_model/` (a PEFT LoRA over Llama 3.1). The two
bases come from `extra_models`: "vision_model" (SigLIP: only its config is read, since clip_model.pt holds every
vision weight) and "text_model" (Llama 3.1: weights and tokenizer).

The adapter turns the vision tower's penultimate hidden states into 731 text embeddings (start, 729 patches,
end) that are spliced into the prompt's embeddings; generation runs from `inputs_embeds`, a real batch with
per-image seeded sampling. Alpha One: begin-of-text, image, prompt, the adapter's end-of-turn embedding (no chat
template). Alpha Two: the Llama 3.1 chat template with the image just before the user's prompt.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from beprepared_dagster.errors import BeprepareError
from beprepared_dagster.models.api import Backend, ResolvedModel, WorkItem
from beprepared_dagster.models.backends.sampling import generation_kwargs
from beprepared_dagster.models.devices import torch_dtype

CHECKPOINT_FILES = (
    "clip_model.pt",
    "image_adapter.pt",
    "text_model/adapter_config.json",
    "text_model/adapter_model.safetensors",
)
SYSTEM = "You are a helpful image captioner."
EOT = "<|eot_id|>"
# Prefixes torch.compile and DistributedDataParallel put on the saved vision keys.
_KEY_PREFIXES = ("_orig_mod.", "module.")


def checkpoint_folder(model: ResolvedModel) -> Path:
    """The folder holding the four checkpoint files (a subfolder of a space snapshot, or the folder given)."""
    return model.path / model.spec.subfolder if model.spec.subfolder else model.path


def missing_files(folder: Path) -> list[str]:
    return [name for name in CHECKPOINT_FILES if not (folder / name).is_file()]


class JoyCaptionAlphaBackend(Backend):
    """Args (from the node): prompt, max_new_tokens, temperature, top_p, extra_models {vision_model,
    text_model}. Subclasses place the image in the prompt (`prompt_ids`, `suffix_embeds`)."""

    def load(self) -> None:
        from transformers import AutoTokenizer

        folder = checkpoint_folder(self.model)
        missing = missing_files(folder)
        if missing:
            raise BeprepareError(
                f"{folder} is not a JoyCaption Alpha checkpoint folder: missing {', '.join(missing)}"
            )
        extras = self.args.get("extra_models") or {}
        if not {"vision_model", "text_model"} <= set(extras):
            raise BeprepareError("JoyCaption Alpha needs extra_models 'vision_model' and 'text_model'")
        vision, text = Path(extras["vision_model"]), Path(extras["text_model"])
        self._dtype = torch_dtype(self.dtype)
        self.vision = _load_vision(vision, folder / "clip_model.pt", self.device, self._dtype)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(text)
        except (OSError, ValueError) as exc:
            raise BeprepareError(f"no tokenizer in {text} (text_model): {exc}") from None
        self.text = _load_text(text, folder / "text_model", self.device, self.dtype, self.quantize)
        text_hidden = self.text.get_input_embeddings().weight.shape[1]
        self.adapter = _load_adapter(
            folder / "image_adapter.pt", self.vision.config.hidden_size, text_hidden, vision, text
        ).to(self.device, self._dtype)
        self.image_size = int(self.vision.config.image_size)
        self._ids(*self.prompt_ids(self.args["prompt"]))
        eot = self.tokenizer.convert_tokens_to_ids(EOT)
        self.stop_ids = [i for i in (self.tokenizer.eos_token_id, eot) if isinstance(i, int) and i >= 0]
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.stop_ids[0]

    def _ids(self, prefix: list[int], suffix: list[int]) -> None:
        import torch

        self.prefix_ids = torch.tensor([prefix], dtype=torch.long, device=self.device)
        self.suffix_ids = torch.tensor([suffix], dtype=torch.long, device=self.device)

    def prompt_ids(self, prompt: str) -> tuple[list[int], list[int]]:
        """Token ids before and after the image."""
        raise NotImplementedError

    def suffix_embeds(self, embed: Any) -> Any:
        return embed(self.suffix_ids)

    def prepare(self, image: Any, item: WorkItem) -> Any:
        import numpy as np
        import torch
        from PIL import Image

        # As the original: a plain square resize (no aspect kept), scaled to [-1, 1].
        square = image.resize((self.image_size, self.image_size), Image.Resampling.LANCZOS)
        pixels = torch.from_numpy(np.asarray(square, dtype=np.float32) / 255.0).permute(2, 0, 1)
        return (pixels - 0.5) / 0.5, item

    def run(self, batch: list[Any]) -> list[Any]:
        import torch

        pixels = torch.stack([p for p, _ in batch]).to(self.device, self._dtype)
        seeds = [int(item.data.get("seed", 0)) for _, item in batch]
        with torch.inference_mode():
            embeds, ids = self._inputs(pixels)
            # Every row holds the same prompt, so rows have one length: no padding, an all-ones mask.
            output = self.text.generate(
                input_ids=ids,
                inputs_embeds=embeds,
                attention_mask=torch.ones_like(ids),
                eos_token_id=self.stop_ids,
                pad_token_id=self.pad_id,
                **generation_kwargs(self.args, seeds),
            )
        texts = self.tokenizer.batch_decode(output[:, ids.shape[1] :], skip_special_tokens=True)
        return [text.strip() for text in texts]

    def _inputs(self, pixels: Any) -> tuple[Any, Any]:
        import torch

        hidden = self.vision(pixel_values=pixels, output_hidden_states=True).hidden_states[-2]
        image = _adapt(self.adapter, hidden)
        embed = self.text.get_input_embeddings()
        prefix, suffix = embed(self.prefix_ids), self.suffix_embeds(embed)
        rows = image.shape[0]
        embeds = torch.cat(
            [prefix.expand(rows, -1, -1), image.to(prefix.dtype), suffix.expand(rows, -1, -1)], dim=1
        )
        # The image positions hold a placeholder id; generation reads their embeddings, not the ids.
        placeholder = torch.zeros((rows, image.shape[1]), dtype=torch.long, device=self.device)
        ids = torch.cat(
            [self.prefix_ids.expand(rows, -1), placeholder, self.suffix_ids.expand(rows, -1)], dim=1
        )
        return embeds, ids

    def close(self) -> None:
        self.vision = self.text = self.adapter = self.tokenizer = None


class JoyCaptionAlphaOneBackend(JoyCaptionAlphaBackend):
    """Begin-of-text, the image, the prompt, then the adapter's own end-of-turn embedding."""

    def prompt_ids(self, prompt: str) -> tuple[list[int], list[int]]:
        tokens = self.tokenizer.encode(prompt, add_special_tokens=False)
        return [self.tokenizer.bos_token_id], [*tokens, self.tokenizer.convert_tokens_to_ids(EOT)]

    def suffix_embeds(self, embed: Any) -> Any:
        import torch

        eot = self.adapter["other_tokens"].weight[2].to(embed.weight.dtype)
        return torch.cat([embed(self.suffix_ids[:, :-1]), eot[None, None, :]], dim=1)


class JoyCaptionAlphaTwoBackend(JoyCaptionAlphaBackend):
    """The Llama 3.1 chat template (system + user prompt) with the image just before the prompt's text."""

    def prompt_ids(self, prompt: str) -> tuple[list[int], list[int]]:
        convo = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
        try:
            text = self.tokenizer.apply_chat_template(convo, tokenize=False, add_generation_prompt=True)
        except ValueError as exc:
            raise BeprepareError(
                f"the text_model tokenizer has no chat template ({exc}); Alpha Two needs Llama 3.1 Instruct's"
            ) from None
        tokens = self.tokenizer.encode(text, add_special_tokens=False)
        eot = self.tokenizer.convert_tokens_to_ids(EOT)
        ends = [i for i, t in enumerate(tokens) if t == eot]
        if len(ends) < 2:
            raise BeprepareError(f"the text_model chat template does not end turns with {EOT} (Llama 3.1's)")
        # The user turn ends at the second <|eot_id|>; its text is the prompt's tokens just before it.
        split = ends[1] - len(self.tokenizer.encode(prompt.strip(), add_special_tokens=False))
        return tokens[:split], tokens[split:]


def _load_tensors(path: Path) -> dict[str, Any]:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise BeprepareError(
            f"{path} holds more than tensors, so it is not loaded (only plain weights are): {exc}"
        ) from None
    except (OSError, RuntimeError, EOFError) as exc:
        raise BeprepareError(f"{path} could not be read: {exc}") from None
    if not isinstance(state, dict):
        raise BeprepareError(f"{path} does not hold a state dict of tensors")
    return state


def _strip(key: str) -> str:
    for prefix in _KEY_PREFIXES:
        key = key.removeprefix(prefix)
    return key


def _load_vision(base: Path, weights: Path, device: str, dtype: Any) -> Any:
    from transformers import SiglipVisionConfig, SiglipVisionModel

    try:
        config = SiglipVisionConfig.from_pretrained(base)
    except (OSError, ValueError) as exc:
        raise BeprepareError(f"{base} (vision_model) has no SigLIP config: {exc}") from None
    tower = SiglipVisionModel(config)
    state = {_strip(k): v for k, v in _load_tensors(weights).items()}
    try:
        tower.load_state_dict(state)
    except RuntimeError as exc:
        raise BeprepareError(f"{weights} does not match the SigLIP config of {base}: {exc}") from None
    return tower.to(device=device, dtype=dtype).eval()


def _load_text(base: Path, adapter: Path, device: str, dtype: str, quantize: str | None) -> Any:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": torch_dtype(dtype)}
    if quantize:
        from transformers import BitsAndBytesConfig

        four = quantize == "4bit"
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=four, load_in_8bit=not four, bnb_4bit_compute_dtype=torch_dtype(dtype)
        )
        kwargs["device_map"] = {"": device}
    try:
        net = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, **kwargs), adapter)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise BeprepareError(
            f"the Llama base {base} (text_model) with the LoRA in {adapter} could not be loaded: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    if not quantize:
        net = net.merge_and_unload().to(device)  # one matmul per layer instead of three
    return net.eval()


def _load_adapter(path: Path, vision_hidden: int, text_hidden: int, vision: Path, text: Path) -> Any:
    import torch

    state = _load_tensors(path)
    if "linear1.weight" not in state or "other_tokens.weight" not in state:
        raise BeprepareError(f"{path} is not a JoyCaption image adapter (no linear1 / other_tokens weights)")
    out_features, in_features = state["linear1.weight"].shape
    if (in_features, out_features) != (vision_hidden, text_hidden):
        raise BeprepareError(
            f"{path} maps {in_features} → {out_features} features, but the vision model {vision} has "
            f"{vision_hidden} and the text model {text} has {text_hidden}: check vision_model= and text_model="
        )
    adapter = torch.nn.ModuleDict(
        {
            "linear1": torch.nn.Linear(in_features, out_features),
            "linear2": torch.nn.Linear(out_features, out_features),
            "other_tokens": torch.nn.Embedding(3, out_features),
        }
    )
    try:
        adapter.load_state_dict(state)
    except RuntimeError as exc:
        raise BeprepareError(f"{path} is not the adapter this node knows: {exc}") from None
    return adapter.eval()


def _adapt(adapter: Any, hidden: Any) -> Any:
    """Image tokens for the text model: start token, one per patch, end token."""
    import torch
    import torch.nn.functional as F

    x = adapter["linear2"](F.gelu(adapter["linear1"](hidden)))
    ends = adapter["other_tokens"].weight[:2].to(x.dtype)
    rows = x.shape[0]
    return torch.cat([ends[0].expand(rows, 1, -1), x, ends[1].expand(rows, 1, -1)], dim=1)
