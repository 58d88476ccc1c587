"""What ``Instance.warm`` builds as a function's ``main.py`` is imported, and what it leaves
lazy: gunicorn forks after that import, and gRPC clients built before a fork break in the
child, so the Firestore and Pub/Sub clients must not exist yet."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sketchgen.adapters.gcp import _firestore
from sketchgen.adapters.gcp.firestore_job_store import FirestoreJobStore
from sketchgen.adapters.gcp.pubsub_task_queue import PubSubTaskQueue
from sketchgen.adapters.traced import TracedImageModel
from sketchgen.generate.nano_banana import NanoBananaAdapter
from sketchgen.settings import get_settings
from tests.functions.conftest import function_app


@pytest.fixture
def cloud_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # The cloud's adapters; nothing here may connect (no emulator is running).
    monkeypatch.setenv("SKETCHGEN_AUTH", "dev")
    monkeypatch.setenv("SKETCHGEN_PROJECT", "warm-test")
    monkeypatch.setenv("SKETCHGEN_JOB_STORE", "firestore")
    monkeypatch.setenv("SKETCHGEN_SKETCH_TOPIC", "sketches")
    monkeypatch.setenv("SKETCHGEN_BLOB_URL", f"file://{tmp_path / 'blobs'}")
    monkeypatch.setenv("GEMINI_API_KEY", "test-key")
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("SKETCHGEN_OFFLINE", raising=False)
    get_settings.cache_clear()
    _firestore.forget_clients()
    yield tmp_path
    get_settings.cache_clear()
    _firestore.forget_clients()


@pytest.mark.parametrize(
    ("name", "target"),
    [("generate", "generate"), ("stream", "stream"), ("sketch_worker", "sketch_worker")],
)
def test_importing_main_builds_the_service_but_no_grpc_client(
    cloud_env: Path, name: str, target: str
) -> None:
    _, instance = function_app(name, target)
    built = instance.built()
    assert built is not None  # settings, adapters, styles, retriever: built at import
    assert isinstance(built.jobs, FirestoreJobStore) and isinstance(built.queue, PubSubTaskQueue)
    assert "google.cloud.firestore" in sys.modules and "google.cloud.pubsub_v1" in sys.modules
    assert _firestore.clients_made() == 0  # no Firestore client yet
    assert not built.queue.connected  # no Pub/Sub client yet
    assert built.styles.loaded == set(built.styles.style_ids())  # every style loaded
    # The services reach the adapter through its spans (sketchgen.adapters.traced).
    assert isinstance(built.model, TracedImageModel)
    model = built.model.model
    assert isinstance(model, NanoBananaAdapter)
    # Only the worker calls the model: its HTTP client (no threads or sockets) is ready.
    assert (model.gemini.built) is (name == "sketch_worker")


def test_a_broken_style_does_not_keep_the_instance_from_starting(
    cloud_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from sketchgen.styles import StyleRegistry

    styles = tmp_path / "styles"
    shutil.copytree(StyleRegistry().root, styles)
    broken = styles / "zz-broken"
    broken.mkdir()
    (broken / "style.json").write_text("{not json")
    monkeypatch.setenv("SKETCHGEN_STYLES_DIR", str(styles))
    get_settings.cache_clear()
    _, instance = function_app("generate", "generate")  # starts: the broken style is logged
    assert instance.built() is not None
