"""Sampling seeded per image: each row of a batch draws from its own generator, so an image's caption does
not depend on which other images share its batch (or on the batch size an out-of-memory back-off chose)."""

from __future__ import annotations

from typing import Any


def seeded_sampler(seeds: list[int], temperature: float, top_p: float) -> Any:
    """A LogitsProcessor that samples one token per row with that row's seed (temperature + top-p) and
    leaves only it possible, so greedy decoding emits exactly the sampled token."""
    import torch
    from transformers import LogitsProcessor

    class _SeededSampler(LogitsProcessor):
        def __init__(self) -> None:
            self.generators: list[Any] | None = None

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            if self.generators is None:
                self.generators = [torch.Generator(device=scores.device).manual_seed(s) for s in seeds]
            probs = torch.softmax(scores.float() / max(temperature, 1e-5), dim=-1)
            if top_p < 1.0:
                ordered, order = probs.sort(dim=-1, descending=True)
                outside = ordered.cumsum(dim=-1) - ordered > top_p
                ordered = ordered.masked_fill(outside, 0.0)
                probs = torch.zeros_like(probs).scatter(-1, order, ordered)
            chosen = [torch.multinomial(probs[i], 1, generator=g) for i, g in enumerate(self.generators)]
            out = torch.full_like(scores, float("-inf"))
            out.scatter_(-1, torch.stack(chosen), 0.0)
            return out

    return _SeededSampler()


def generation_kwargs(args: dict[str, Any], seeds: list[int]) -> dict[str, Any]:
    """`generate` arguments from a node's generation parameters; temperature 0 means greedy."""
    kwargs: dict[str, Any] = {"max_new_tokens": int(args.get("max_new_tokens", 300)), "do_sample": False}
    if args.get("min_new_tokens"):  # benchmarks force a fixed number of new tokens
        kwargs["min_new_tokens"] = int(args["min_new_tokens"])
    temperature = float(args.get("temperature", 0.0) or 0.0)
    if temperature > 0:
        kwargs["logits_processor"] = [seeded_sampler(seeds, temperature, float(args.get("top_p", 1.0)))]
    return kwargs
