"""Estimated cost from the token counts a server reports in `usage`.

Prices are USD per million tokens (prompt, completion) for the nodes' default models, as the providers list
them for standard (non-batch) requests; they change, so treat the estimate as a guide. Other models get a cost
only with `price_per_1k_tokens=`.
"""

from __future__ import annotations

from typing import Any

PER_MILLION: dict[str, tuple[float, float]] = {
    "gpt-4o-2024-08-06": (2.50, 10.00),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1-mini": (0.40, 1.60),
    "gemini-2.0-flash": (0.10, 0.40),
    "gemini-2.5-flash": (0.30, 2.50),
}


def check_price(value: Any) -> tuple[float, float] | None:
    """`price_per_1k_tokens`: None, one price for every token, or a (prompt, completion) pair, in USD."""
    if value is None:
        return None
    pair = (value, value) if isinstance(value, int | float) else value
    if (
        not isinstance(pair, list | tuple)
        or len(pair) != 2
        or not all(isinstance(p, int | float) and not isinstance(p, bool) and p >= 0 for p in pair)
    ):
        raise ValueError(
            f"price_per_1k_tokens must be a price in USD (e.g. 0.002) or a (prompt, completion) pair, got {value!r}"
        )
    return float(pair[0]), float(pair[1])


def estimate(
    model: str, prompt_tokens: int, completion_tokens: int, per_1k: tuple[float, float] | None = None
) -> float | None:
    """USD for the tokens, or None when the model's price is unknown."""
    if per_1k is not None:
        return (prompt_tokens * per_1k[0] + completion_tokens * per_1k[1]) / 1000
    price = PER_MILLION.get(model)
    if price is None:
        return None
    return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000
