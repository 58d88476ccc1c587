"""User styles on real parts (issue 16): the Firestore emulator's documents and vector search
(``find_nearest``), and Gemini embeddings through the real google-genai SDK against the local
Gemini-protocol server."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from sketchgen.adapters.gcp.firestore_style_store import (
    FirestoreReferenceIndex,
    FirestoreStyleStore,
)
from sketchgen.adapters.local.numpy_index import NumpyReferenceIndex
from sketchgen.adapters.local.style_store import MemoryStyleStore
from sketchgen.bootstrap import build_service
from sketchgen.errors import ModelRequestError
from sketchgen.generate.offline import OfflineSketchAdapter
from sketchgen.jobs import JobRequest
from sketchgen.ports import ReferenceIndex, StyleStore
from sketchgen.references import EMBEDDING_DIMENSIONS, HashingTextEmbedding
from sketchgen.references.gemini_embedding import GeminiTextEmbedder
from sketchgen.settings import Settings
from sketchgen.styles.owned import ReferenceDoc, StyleDoc, StyleDraft
from sketchgen.testing.gemini_server import FakeGeminiServer

KEY = "test-key-not-a-secret-0123456789"
TEXTS = {
    "a" * 64: ("golf, mascot", "a golfer mascot swinging a club"),
    "b" * 64: ("coffee", "a steaming coffee cup"),
    "c" * 64: ("robot", "a robot in an action pose"),
    "d" * 64: ("golf", "golf ball on a tee, golfer"),
}


def _png(seed: int) -> bytes:
    image = Image.new("L", (40, 30), 255)
    image.putpixel((seed % 40, seed % 30), 0)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _fill(store: StyleStore, style_id: str, owner: str = "alice") -> HashingTextEmbedding:
    embedder = HashingTextEmbedding(EMBEDDING_DIMENSIONS)
    store.create_style(StyleDoc(style_id=style_id, owner_uid=owner, name="s"))
    for sha, (tags, description) in TEXTS.items():
        reference = ReferenceDoc(sha256=sha, tags=tuple(tags.split(", ")), description=description)
        vector = embedder.embed([reference.text()])[0]
        store.put_reference(
            style_id,
            reference.model_copy(
                update={
                    "embedding": tuple(vector),
                    "embedding_model": embedder.model,
                    "do_not_use": sha == "d" * 64,
                }
            ),
        )
    return embedder


@pytest.fixture
def firestore(firestore_emulator: str) -> tuple[FirestoreStyleStore, FirestoreReferenceIndex]:
    project = f"styles-{uuid.uuid4().hex[:8]}"
    return FirestoreStyleStore(project=project), FirestoreReferenceIndex(project=project)


def test_firestore_style_documents(
    firestore: tuple[FirestoreStyleStore, FirestoreReferenceIndex],
) -> None:
    store, _ = firestore
    _fill(store, "u-" + "a" * 20)
    _fill(store, "u-" + "b" * 20, owner="bob")
    assert [s.style_id for s in store.list_styles("alice")] == ["u-" + "a" * 20]
    references = store.list_references("u-" + "a" * 20)
    assert [r.sha256 for r in references] == sorted(TEXTS)
    assert len(references[0].embedding or ()) == EMBEDDING_DIMENSIONS
    stale = store.references_not_embedded_by("another-model@768", limit=100)
    assert len(stale) == 8
    store.put_reference("u-" + "a" * 20, ReferenceDoc(sha256="e" * 64))
    assert [r.sha256 for _, r in store.references_not_embedded_by("hashing-v1@768", limit=100)] == [
        "e" * 64
    ]
    store.delete_style("u-" + "a" * 20)
    assert store.get_style("u-" + "a" * 20) is None and store.list_references("u-" + "a" * 20) == []


def test_find_nearest_matches_numpy(
    firestore: tuple[FirestoreStyleStore, FirestoreReferenceIndex],
) -> None:
    store, index = firestore
    local = MemoryStyleStore()
    style_id = "u-" + "c" * 20
    embedder = _fill(store, style_id)
    _fill(local, style_id)
    _fill(store, "u-" + "d" * 20)  # another style's identical references never leak in
    query = embedder.embed(["golf mascot"], task="query")[0]
    indexes: list[ReferenceIndex] = [index, NumpyReferenceIndex(local)]
    answers = [i.nearest(style_id, query, model=embedder.model, top_k=3) for i in indexes]
    cloud, numpy = answers
    assert [n.sha256 for n in cloud] == [n.sha256 for n in numpy]
    assert cloud[0].sha256 == "a" * 64 and "d" * 64 not in {n.sha256 for n in cloud}  # do_not_use
    for a, b in zip(cloud, numpy, strict=True):
        assert a.score == pytest.approx(b.score, abs=1e-4)
    assert index.nearest(style_id, query, model="another-model@768", top_k=3) == []


def test_the_service_on_firestore_plans_from_vector_search(
    firestore_emulator: str, tmp_path: Path
) -> None:
    settings = Settings(
        job_store="firestore",
        project=f"svc-{uuid.uuid4().hex[:8]}",
        blob_url=f"file://{tmp_path}",
        offline=True,
        auth="dev",
    )
    service = build_service(settings)
    catalog = service.catalog
    doc = catalog.create_style("alice", StyleDraft(name="team", rules=("thick ink",)))
    golf, _ = catalog.add_reference(
        "alice", doc.style_id, _png(1), tags=("golf", "mascot"), description="golfer mascot"
    )
    catalog.add_reference(
        "alice", doc.style_id, _png(2), tags=("coffee",), description="coffee cup"
    )
    job, _ = service.submission.submit_job(
        "alice", JobRequest(brief="golf mascot", style_id=doc.style_id, num_images=1)
    )
    stored = service.jobs.get_job(job.job_id)
    assert stored is not None and stored.plan.references[0].sha256 == golf.sha256
    assert (stored.plan.style_version or "").startswith("sv1-")


# -- Gemini embeddings through google-genai -------------------------------------------------------


@pytest.fixture
def gemini() -> Iterator[FakeGeminiServer]:
    with FakeGeminiServer() as running:
        yield running


def test_gemini_embeddings_use_task_types_and_the_index_size(gemini: FakeGeminiServer) -> None:
    embedder = GeminiTextEmbedder(KEY, base_url=gemini.url, dimensions=EMBEDDING_DIMENSIONS)
    documents = embedder.embed(["golfer mascot", "coffee cup"], task="document")
    (query,) = embedder.embed(["golf mascot"], task="query")
    assert len(documents) == 2 and all(len(v) == EMBEDDING_DIMENSIONS for v in (*documents, query))
    assert [(m, t, d) for m, t, d, _ in gemini.embedded] == [
        ("gemini-embedding-001", "RETRIEVAL_DOCUMENT", EMBEDDING_DIMENSIONS),
        ("gemini-embedding-001", "RETRIEVAL_DOCUMENT", EMBEDDING_DIMENSIONS),
        ("gemini-embedding-001", "RETRIEVAL_QUERY", EMBEDDING_DIMENSIONS),
    ]
    assert embedder.model == f"gemini-embedding-001@{EMBEDDING_DIMENSIONS}"
    dot = [sum(a * b for a, b in zip(query, d, strict=True)) for d in documents]
    assert dot[0] > dot[1]


def test_an_unknown_embedding_model_is_refused(gemini: FakeGeminiServer) -> None:
    embedder = GeminiTextEmbedder(KEY, model="no-such-embedding", base_url=gemini.url)
    with pytest.raises(ModelRequestError, match="404"):
        embedder.embed(["x"])


def test_the_service_embeds_with_gemini_when_a_key_is_configured(
    gemini: FakeGeminiServer, tmp_path: Path
) -> None:
    settings = Settings(
        job_store="memory://",
        blob_url=f"file://{tmp_path}",
        auth="dev",
        **{"GEMINI_API_KEY": KEY, "GOOGLE_GEMINI_BASE_URL": gemini.url},
    )
    service = build_service(settings, model=OfflineSketchAdapter())  # embeddings only, here
    catalog = service.catalog
    doc = catalog.create_style("alice", StyleDraft(name="team"))
    golf, _ = catalog.add_reference(
        "alice", doc.style_id, _png(1), tags=("golf",), description="golfer mascot"
    )
    assert golf.embedding_model == f"gemini-embedding-001@{EMBEDDING_DIMENSIONS}"
    catalog.add_reference(
        "alice", doc.style_id, _png(2), tags=("coffee",), description="coffee cup"
    )
    job, _ = service.submission.submit_job(
        "alice", JobRequest(brief="golf mascot", style_id=doc.style_id, num_images=1)
    )
    assert job.plan.references[0].sha256 == golf.sha256
    assert gemini.embedded[-1][1] == "RETRIEVAL_QUERY"


def test_an_upload_without_a_description_gets_one_from_gemini(
    gemini: FakeGeminiServer, tmp_path: Path
) -> None:
    values = {"GEMINI_API_KEY": KEY, "GOOGLE_GEMINI_BASE_URL": gemini.url}
    service = build_service(
        Settings(job_store="memory://", blob_url=f"file://{tmp_path}", auth="dev", **values),
        model=OfflineSketchAdapter(),
    )
    catalog = service.catalog
    doc = catalog.create_style("alice", StyleDraft(name="team"))
    described, _ = catalog.add_reference(
        "alice", doc.style_id, _png(1), tags=("golf",), description=""
    )
    assert described.description.startswith("A rough black-and-white line sketch, 40x30")
    given, _ = catalog.add_reference("alice", doc.style_id, _png(2), tags=(), description="mine")
    assert given.description == "mine"
    asks = [e for e in gemini.embedded if e[1] == "DESCRIBE"]
    assert len(asks) == 1 and asks[0][0] == "gemini-2.5-flash"
    # The description is what was embedded, with the tags.
    assert any("golf" in text and "line sketch" in text for *_, text in gemini.embedded)

    off = build_service(
        Settings(job_store="memory://", blob_url=f"file://{tmp_path}", auth="dev",
                 describe_references=False, **values),
        model=OfflineSketchAdapter(),
    )  # fmt: skip
    doc = off.catalog.create_style("alice", StyleDraft(name="team"))
    plain, _ = off.catalog.add_reference(
        "alice", doc.style_id, _png(3), tags=("x",), description=""
    )
    assert plain.description == ""
