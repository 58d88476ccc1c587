"""The finisher: every image, from every model, held to the visual rules."""

from sketchgen.finish._finisher import SketchQA, finish_sketch, finish_sketch_with_qa, measure

__all__ = ["SketchQA", "finish_sketch", "finish_sketch_with_qa", "measure"]
