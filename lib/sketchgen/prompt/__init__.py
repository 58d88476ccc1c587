"""Prompt compiler and variation plan."""

from sketchgen.prompt.compiler import PromptCompiler, render_sketch_prompt
from sketchgen.prompt.variation import plan_variations

__all__ = ["PromptCompiler", "plan_variations", "render_sketch_prompt"]
