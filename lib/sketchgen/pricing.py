"""What one image costs: the price table, in one place.

Figures: the Gemini API's paid tier, per output image, as published on
https://ai.google.dev/gemini-api/docs/pricing (image output tokens priced per million;
the per-image figures are Google's own rounding). Read 2026-12-03 through secondary copies
of that page (the page itself was not reachable from the build machine); check them there
before relying on them for invoices. The Batch API bills half of each figure.

A model the table does not know costs as the most expensive known one until it is added:
an unknown model must never look cheap to a budget.
"""

from __future__ import annotations

from typing import Literal

from sketchgen.image_models import OFFLINE_MODEL_ID, resolve_model

__all__ = [
    "BATCH_DISCOUNT",
    "PRICES_READ_ON",
    "PRICES_SOURCE",
    "PRICE_PER_CALL_USD",
    "PRICE_PER_IMAGE_USD",
    "CallKind",
    "is_billable",
    "price_per_call",
    "price_per_image",
    "sketch_cost_usd",
]

PRICES_SOURCE = "https://ai.google.dev/gemini-api/docs/pricing"
PRICES_READ_ON = "2026-12-03"
BATCH_DISCOUNT = 0.5  # the Batch API bills half the interactive price

# model id -> image size -> USD per output image (interactive, paid tier).
PRICE_PER_IMAGE_USD: dict[str, dict[str, float]] = {
    # 1290 output tokens at $30 / 1M; the model draws 1K only.
    "gemini-2.5-flash-image": {"1K": 0.039},
    # $60 / 1M image tokens: 1120 tokens at 1K, 1680 at 2K, 2520 at 4K.
    "gemini-3.1-flash-image-preview": {"1K": 0.067, "2K": 0.101, "4K": 0.151},
    # $120 / 1M image tokens: 1120 tokens at 1K and 2K, 2000 at 4K.
    "gemini-3-pro-image-preview": {"1K": 0.134, "2K": 0.134, "4K": 0.24},
}
_MOST_EXPENSIVE = max(p for sizes in PRICE_PER_IMAGE_USD.values() for p in sizes.values())


CallKind = Literal["describe", "embed"]

# The paid calls that draw no image, per call, from the same page's token prices, rounded up
# to what the largest input we send can cost (docs/decisions/0020).
PRICE_PER_CALL_USD: dict[str, dict[str, float]] = {
    # A reference described: a PNG of at most 2048 px (9 tiles of 258 tokens) and the prompt,
    # ~2,400 input tokens at $0.30 / 1M, plus at most ~1,000 output tokens (thinking
    # included) at $2.50 / 1M.
    "describe": {"gemini-2.5-flash": 0.0033},
    # A reference's text embedded: at most ~330 tokens (500 characters of description plus
    # tags) at $0.15 / 1M.
    "embed": {"gemini-embedding-001": 0.00005},
}
# The local embedding (hashing, no network) is named like this; it costs nothing.
_LOCAL_EMBEDDING_PREFIX = "hashing-"


def price_per_call(kind: CallKind, model: str) -> float:
    """USD for one ``kind`` call to ``model``. A vector size suffix (``model@768``) is
    ignored; the local hashing embedding is free; a model the table lacks costs the dearest
    of its kind (it must never look cheap to a budget)."""
    model_id = model.split("@", 1)[0]
    if kind == "embed" and model_id.startswith(_LOCAL_EMBEDDING_PREFIX):
        return 0.0
    prices = PRICE_PER_CALL_USD[kind]
    return prices.get(model_id, max(prices.values()))


def price_per_image(model: str, image_size: str, *, batch: bool = False) -> float:
    """USD for one image of ``model`` (an id or alias) at ``image_size``.

    The offline model is free. A size the table lacks for a known model costs that model's
    dearest size; an unknown model costs the dearest image in the table.
    """
    model_id = resolve_model(model).id
    if model_id == OFFLINE_MODEL_ID:
        return 0.0
    sizes = PRICE_PER_IMAGE_USD.get(model_id) or {"": _MOST_EXPENSIVE}
    price = sizes.get(image_size.upper(), max(sizes.values()))
    return round(price * (BATCH_DISCOUNT if batch else 1.0), 6)


def is_billable(status: str, finish_reason: str | None) -> bool:
    """Did the model answer with an image we pay for? A delivered sketch, or an image that
    broke the visual rules (the model drew it; it was billed). Cancelled, refused before the
    call, failed without an image: not billable, refunded."""
    return status == "ok" or finish_reason == "OFF_STYLE"


def sketch_cost_usd(model: str, image_size: str, model_calls: int, *, batch: bool = False) -> float:
    """What one sketch cost: every model call sent for it is charged, whatever it answered
    (docs/decisions/0025); half price when it came from a model-side batch (the Batch API).
    The one cost rule, for the library's sketches and the service's alike (ADR 0061)."""
    return round(model_calls * price_per_image(model, image_size, batch=batch), 6)
