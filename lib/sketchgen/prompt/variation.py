"""The variation plan: each sketch of a job gets its own (layout, exaggeration) pair."""

from __future__ import annotations

import random

from sketchgen.errors import ConfigError
from sketchgen.schemas import EXAGGERATIONS, LAYOUTS, Variation

__all__ = [
    "MAX_VARIATIONS",
    "plan_layout_variations",
    "plan_refinement_variations",
    "plan_variations",
]

MAX_VARIATIONS = len(LAYOUTS) * len(EXAGGERATIONS)


def plan_variations(num_images: int, seed: int) -> tuple[Variation, ...]:
    """``num_images`` distinct (layout, exaggeration) pairs, the same for the same seed.

    Layouts are spread first (the first six sketches never share one), and the exaggeration
    steps one place each time the layouts wrap around, so no pair can repeat before all
    eighteen are used.
    """
    if not 1 <= num_images <= MAX_VARIATIONS:
        raise ConfigError(f"num_images must be between 1 and {MAX_VARIATIONS}", field="num_images")
    rng = random.Random(seed)
    layouts = list(LAYOUTS)
    exaggerations = list(EXAGGERATIONS)
    rng.shuffle(layouts)
    rng.shuffle(exaggerations)
    n = len(layouts)
    return tuple(
        Variation(
            index=i,
            layout=layouts[i % n],
            exaggeration=exaggerations[(i + i // n) % len(exaggerations)],
        )
        for i in range(num_images)
    )


def plan_refinement_variations(
    parent: Variation, num_images: int, seed: int
) -> tuple[Variation, ...]:
    """A refinement keeps the chosen sketch's pair first; any extra sketches explore others."""
    others = [
        v
        for v in plan_variations(MAX_VARIATIONS, seed)
        if (v.layout, v.exaggeration) != (parent.layout, parent.exaggeration)
    ]
    chosen = [parent, *others[: num_images - 1]]
    return tuple(
        Variation(index=i, layout=v.layout, exaggeration=v.exaggeration)
        for i, v in enumerate(chosen)
    )


def plan_layout_variations(parent: Variation, num_images: int) -> tuple[Variation, ...]:
    """Variations of one sketch (issue 27): its layout kept, the exaggeration varied — the
    other degrees first, the sketch's own last, then round again."""
    if not 1 <= num_images <= MAX_VARIATIONS:
        raise ConfigError(f"num_images must be between 1 and {MAX_VARIATIONS}", field="num_images")
    order = [e for e in EXAGGERATIONS if e != parent.exaggeration] + [parent.exaggeration]
    return tuple(
        Variation(index=i, layout=parent.layout, exaggeration=order[i % len(order)])
        for i in range(num_images)
    )
