"""The functions as deployed, read from ``infra/functions.yaml`` (the file Terraform reads).

``make dev``, the build and the tests take every function's source, trigger, variable names,
secrets and permissions from here, never from a list of their own.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sketchgen.timing import DeliveryTiming

__all__ = ["DEFINITION", "Definition", "Function", "Grants", "Trigger", "load_definition"]

REPO = Path(__file__).resolve().parents[1]
DEFINITION = REPO / "infra" / "functions.yaml"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Trigger(_Frozen):
    type: Literal["http", "push", "event"]
    public: bool = False  # http: anyone may invoke; the app authenticates every request
    topic: str | None = None  # push and event: the topic delivered
    dead_letter_path: str | None = None  # push: where the dead letters are pushed


class Grants(_Frozen):
    """What a function's identity may do; everything else is refused (cloud IAM and make dev)."""

    firestore: Literal["read", "read_write"] | None = None
    publish: tuple[str, ...] = ()
    buckets: dict[str, Literal["read", "read_write"]] = Field(default_factory=dict)
    sign_urls: bool = False


class Function(_Frozen):
    name: str = ""
    description: str
    source: str  # functions/<source>/main.py
    entry_point: str
    trigger: Trigger
    env: tuple[str, ...] = ()  # beyond shared_env
    secrets: dict[str, str] = Field(default_factory=dict)  # variable -> secret id
    may: Grants = Grants()


class Definition(_Frozen):
    shared_env: tuple[str, ...]
    delivery: dict[str, float]  # the numbers sketchgen.timing.DeliveryTiming derives from
    topics: dict[str, str]
    buckets: dict[str, str]
    functions: dict[str, Function]

    @model_validator(mode="after")
    def _consistent(self) -> Definition:
        for name, function in self.functions.items():
            topics = [*function.may.publish]
            if function.trigger.topic is not None:
                topics.append(function.trigger.topic)
            unknown = {t for t in topics if t not in self.topics}
            unknown |= {b for b in function.may.buckets if b not in self.buckets}
            if unknown:
                raise ValueError(f"function {name} names undefined topics/buckets {unknown}")
            if function.trigger.type != "http" and function.trigger.topic is None:
                raise ValueError(
                    f"function {name}: a {function.trigger.type} trigger needs a topic"
                )
        return self

    def env_names(self, function: str) -> tuple[str, ...]:
        """Every plain variable name the function gets, in the cloud and locally."""
        return (*self.shared_env, *self.functions[function].env)

    def all_env_names(self) -> set[str]:
        return {name for function in self.functions for name in self.env_names(function)}

    def timing(self, *, model_timeout_s: float) -> DeliveryTiming:
        """A sketch delivery's budget, lease and redelivery for this model timeout."""
        return DeliveryTiming.from_definition(self.delivery, model_timeout_s=model_timeout_s)


@cache
def load_definition(path: Path = DEFINITION) -> Definition:
    raw = yaml.safe_load(path.read_text())
    functions = {name: {**spec, "name": name} for name, spec in raw["functions"].items()}
    return Definition.model_validate({**raw, "functions": functions})
