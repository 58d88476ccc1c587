"""The finisher: every image, from every model, held to the visual rules."""

from sketchgen.finish._finisher import SketchQA, finish_sketch, finish_sketch_with_qa, measure
from sketchgen.finish._guard import guard_sketch
from sketchgen.finish._rules import RULES, VisualRules

__all__ = [
    "RULES",
    "SketchQA",
    "VisualRules",
    "finish_sketch",
    "finish_sketch_with_qa",
    "guard_sketch",
    "measure",
]
