"""The Firestore vector index (Terraform) is declared as the reference index queries it."""

from __future__ import annotations

import inspect
from typing import Any

import hcl2

from dev.definition import REPO
from sketchgen.adapters.gcp import firestore_style_store
from sketchgen.references import EMBEDDING_DIMENSIONS

MAIN_TF = REPO / "infra" / "terraform" / "environments" / "_shared" / "main.tf"


def _unquoted(value: Any) -> Any:
    # python-hcl2 keeps the quotes of string literals.
    if isinstance(value, str):
        return value.strip('"')
    if isinstance(value, list):
        return [_unquoted(v) for v in value]
    if isinstance(value, dict):
        return {k: _unquoted(v) for k, v in value.items()}
    return value


def test_the_vector_index_matches_the_query() -> None:
    with MAIN_TF.open() as handle:
        terraform = hcl2.load(handle)
    (firestore,) = [b['"firestore"'] for b in terraform["module"] if '"firestore"' in b]
    index = _unquoted(firestore["vector_indexes"]["style_references"])
    assert index["dimension"] == EMBEDDING_DIMENSIONS
    assert index["collection"] == firestore_style_store.REFERENCES
    source = inspect.getsource(firestore_style_store.FirestoreReferenceIndex.nearest)
    for field in (*index["filters"], index["vector_field"]):
        assert f'"{field}"' in source, field
