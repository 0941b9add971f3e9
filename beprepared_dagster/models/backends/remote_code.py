"""Captioners whose checkpoints carry their own modeling code: Molmo v1 and xGen-MM (BLIP-3).

They load only with `trust_remote_code=True` (their nodes set it and the runtime logs it); with it False,
transformers refuses before any of the checkpoint's code runs, and the refusal is reported as such.
transformers 5 has no AutoModelForVision2Seq (xGen-MM's only auto class), so the model class is read from
the checkpoint's own `auto_map`.

Molmo: `processor.process` prepares each image on the decode threads; a batch is then one real batch, every
tensor padded on the right with -1, the padding Molmo's own collator uses and `generate_from_batch` reads as
"not there" (the original sent a batch as one multi-image prompt).
xGen-MM: the prompt in its Phi-3 chat format, an optional horizontal crop band (the original's fixed 5 %–91 %
crop, now a node option), anyres crops, `pixel_values` as a list of per-image tensors.
"""

from __future__ import annotations

import contextlib
from typing import Any

from beprepared_dagster.errors import BeprepareError
from beprepared_dagster.models.api import WorkItem
from beprepared_dagster.models.backends.sampling import generation_kwargs
from beprepared_dagster.models.backends.vlm import VLMBackend
from beprepared_dagster.models.devices import torch_dtype

MODEL_KEYS = ("AutoModelForImageTextToText", "AutoModelForVision2Seq", "AutoModelForCausalLM")
PHI3_PROMPT = (
    "<|system|>\nA chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful and detailed answers to the user's questions.<|end|>\n"
    "<|user|>\n<image>\n{prompt}<|end|>\n<|assistant|>\n"
)


class RemoteCodeBackend(VLMBackend):
    """Shared loading: the model class from the checkpoint's `auto_map`, errors that say what went wrong."""

    def _loading(self, what: str, load: Any) -> Any:
        trust = bool(self.model.spec.trust_remote_code)
        try:
            return load(trust)
        except ValueError as exc:
            if not trust and "trust_remote_code" in str(exc):
                raise BeprepareError(
                    f"{self._where()} ships its own Python code and is refused without trust_remote_code=True"
                ) from None
            raise self._failed(what, exc) from None
        except (OSError, KeyError, ImportError, TypeError, AttributeError) as exc:
            raise self._failed(what, exc) from None

    def _failed(self, what: str, exc: Exception) -> BeprepareError:
        return BeprepareError(
            f"the {what} of {self._where()} could not be loaded as a {self.model.spec.family} checkpoint: "
            f"{type(exc).__name__}: {exc}"
        )

    def _where(self) -> str:
        label, path = self.model.label, str(self.model.path)
        return label if label == path else f"{label} ({path})"

    def _model(self, trust: bool) -> Any:
        from transformers import AutoConfig
        from transformers.dynamic_module_utils import get_class_from_dynamic_module

        config = AutoConfig.from_pretrained(self.model.path, trust_remote_code=trust)
        auto_map = getattr(config, "auto_map", None) or {}
        key = next((k for k in MODEL_KEYS if k in auto_map), None)
        if key is None:
            raise KeyError(f"config.json has no auto_map entry for any of {', '.join(MODEL_KEYS)}")
        model_class = get_class_from_dynamic_module(auto_map[key], self.model.path)
        net = model_class.from_pretrained(self.model.path, config=config, **self._load_kwargs())
        if not self.quantize:
            net.to(self.device)
        return net.eval()

    def _autocast(self) -> Any:
        import torch

        if self.device.startswith("cuda"):  # the remote code mixes dtypes inside, as the original ran it
            return torch.autocast("cuda", dtype=torch_dtype(self.dtype))
        return contextlib.nullcontext()

    def close(self) -> None:
        self.net = self.processor = None


class MolmoBackend(RemoteCodeBackend):
    """Args: prompt, max_new_tokens, temperature, top_p."""

    def load(self) -> None:
        from transformers import AutoProcessor

        self.processor = self._loading(
            "processor", lambda trust: AutoProcessor.from_pretrained(self.model.path, trust_remote_code=trust)
        )
        self.net = self._loading("model", self._model)
        tokenizer = self.processor.tokenizer
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def prepare(self, image: Any, item: WorkItem) -> Any:
        return self.processor.process(images=[image], text=self.args["prompt"]), item

    def run(self, batch: list[Any]) -> list[Any]:
        import torch
        from transformers import GenerationConfig

        inputs = {k: v.to(self.device) for k, v in pad_right([p for p, _ in batch]).items()}
        for key, value in inputs.items():
            if value.is_floating_point():
                inputs[key] = value.to(torch_dtype(self.dtype))
        kwargs = generation_kwargs(self.args, [int(item.data.get("seed", 0)) for _, item in batch])
        config = GenerationConfig(
            max_new_tokens=kwargs.pop("max_new_tokens"),
            min_new_tokens=kwargs.pop("min_new_tokens", None),
            do_sample=kwargs.pop("do_sample"),
            stop_strings="<|endoftext|>",
            pad_token_id=self.pad_id,
        )
        with torch.inference_mode(), self._autocast():
            output = self.net.generate_from_batch(
                inputs, config, tokenizer=self.processor.tokenizer, **kwargs
            )
        new = output[:, inputs["input_ids"].shape[1] :]
        return [t.strip() for t in self.processor.tokenizer.batch_decode(new, skip_special_tokens=True)]


def pad_right(examples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack per-example tensors into a batch, padding every dimension on the right with -1."""
    import torch

    batch = {}
    for key in examples[0]:
        tensors = [torch.as_tensor(example[key]) for example in examples]
        shape = [max(sizes) for sizes in zip(*(t.shape for t in tensors), strict=True)]
        out = torch.full((len(tensors), *shape), -1, dtype=tensors[0].dtype)
        for row, tensor in enumerate(tensors):
            out[(row, *(slice(0, size) for size in tensor.shape))] = tensor
        batch[key] = out
    return batch


class XGenMMBackend(RemoteCodeBackend):
    """Args: prompt, crop ((top, bottom) fractions of the height, or None), max_new_tokens, temperature,
    top_p."""

    def load(self) -> None:
        from transformers import AutoImageProcessor, AutoTokenizer

        path = self.model.path
        self.net = self._loading("model", self._model)
        tokenizer = self._loading(
            "tokenizer", lambda trust: AutoTokenizer.from_pretrained(path, trust_remote_code=trust)
        )
        self.image_processor = self._loading(
            "image processor", lambda trust: AutoImageProcessor.from_pretrained(path, trust_remote_code=trust)
        )
        self.tokenizer = self.net.update_special_tokens(tokenizer)
        self.language = self.tokenizer([PHI3_PROMPT.format(prompt=self.args["prompt"])], return_tensors="pt")
        end = self.tokenizer.convert_tokens_to_ids("<|end|>")
        eos = self.tokenizer.eos_token_id
        self.stop_ids = [i for i in (eos, end) if isinstance(i, int) and i >= 0]
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else eos

    def prepare(self, image: Any, item: WorkItem) -> Any:
        crop = self.args.get("crop")
        if crop:
            top, bottom = crop
            width, height = image.size
            upper = min(height - 1, round(height * top))
            image = image.crop((0, upper, width, max(upper + 1, round(height * bottom))))
        pixels = self.image_processor([image], return_tensors="pt", image_aspect_ratio="anyres")
        return (pixels["pixel_values"][0], image.size), item

    def run(self, batch: list[Any]) -> list[Any]:
        import torch

        rows = len(batch)
        # One prompt for every image: the rows have one length, no padding needed.
        inputs = {k: v.expand(rows, -1).to(self.device) for k, v in self.language.items()}
        pixels = [p.to(self.device, torch_dtype(self.dtype)) for (p, _), _ in batch]
        seeds = [int(item.data.get("seed", 0)) for _, item in batch]
        with torch.inference_mode(), self._autocast():
            output = self.net.generate(
                pixel_values=pixels,
                **inputs,
                image_size=[size for (_, size), _ in batch],
                pad_token_id=self.pad_id,
                eos_token_id=self.stop_ids,
                num_beams=1,
                **generation_kwargs(self.args, seeds),
            )
        texts = self.tokenizer.batch_decode(output, skip_special_tokens=True)
        return [text.split("<|end|>")[0].strip() for text in texts]

    def close(self) -> None:
        self.net = self.tokenizer = self.image_processor = None
