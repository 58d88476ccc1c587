"""The first hour of a new user, on the command line (issue 26): models that cannot work are
refused, the offline model says it drew, stopped or disk-full runs leave a folder that says
what it holds, and the numbers and modes are the ones the rest of the product uses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sketchgen.cli import main
from sketchgen.errors import ConfigError
from sketchgen.generate.config import GenerationConfig
from sketchgen.generate.generator import INTERRUPTED
from sketchgen.generate.models import ALIASES, OFFLINE_MODEL_ID, known_models
from sketchgen.settings import Settings
from tests.helpers.waiting import wait_until


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("sketchgen: error:") and "Value error" not in lines[0]
    return lines[0]


def test_an_unknown_model_is_refused_listing_the_names_and_aliases(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, out, err = _run(
        capsys, "generate", "golf", "--model", "nope", "--output-dir", str(tmp_path)
    )
    line = _one_error_line(err)
    assert code == 2 and out == "" and "--model" in line and "'nope'" in line
    assert all(name in line for name in [*known_models(), *ALIASES])
    assert not any(tmp_path.iterdir())  # refused before a job folder was made

    from sketchgen.settings import get_settings

    monkeypatch.setenv("GEMINI_MODEL", "bogus")
    get_settings.cache_clear()
    code, _, err = _run(capsys, "generate", "golf", "--offline", "--output-dir", str(tmp_path))
    line = _one_error_line(err)
    assert code == 2 and "GEMINI_MODEL" in line and "'bogus'" in line and "flash" in line


def test_the_library_refuses_an_unknown_model_in_our_words() -> None:
    with pytest.raises(ConfigError) as error:
        GenerationConfig(model_name="nope")
    assert error.value.field == "model_name" and "Value error" not in str(error.value)
    # Successors of a family are known: a new flash image model works before the table has it.
    assert GenerationConfig(model_name="gemini-4-flash-image").model_name == "gemini-4-flash-image"


@pytest.mark.parametrize(
    ("argv", "env"),
    [(["--model", "pro"], {}), ([], {"GEMINI_MODEL": "gemini-3-pro-image-preview"})],
)
def test_a_gemini_model_without_a_key_is_refused_naming_the_key(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    argv: list[str],
    env: dict[str, str],
) -> None:
    from sketchgen.settings import get_settings

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    code, _, err = _run(capsys, "generate", "golf", *argv, "--output-dir", str(tmp_path))
    line = _one_error_line(err)
    assert code == 2 and "GEMINI_API_KEY" in line and "--offline" in line
    # Asked for on purpose, the offline model draws, and says so.
    code, out, _ = _run(
        capsys, "generate", "golf", *argv, "--offline", "-n", "1", "--output-dir", str(tmp_path)
    )
    assert code == 0 and f"offline sketch model ({OFFLINE_MODEL_ID})" in out


def test_the_offline_model_is_named_in_the_summary_json_and_metadata(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = _run(capsys, "generate", "golf", "-n", "2", "--output-dir", str(tmp_path))
    assert code == 0 and "offline sketch model" in out and "not Gemini" in out
    code, out, _ = _run(
        capsys, "generate", "golf", "-n", "1", "--json", "--output-dir", str(tmp_path)
    )
    done = json.loads(out.splitlines()[-1])
    assert done["model"]["adapter"] == "offline" and done["model"]["used"] == OFFLINE_MODEL_ID
    metadata = json.loads(Path(done["metadata_path"]).read_text())
    assert metadata["model"]["used"] == OFFLINE_MODEL_ID


def test_num_images_is_one_to_six_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "generate", "golf", "-n", "7")
    assert code == 2 and "between 1 and 6" in _one_error_line(err)
    with pytest.raises(ConfigError):
        GenerationConfig(num_images=7)
    assert GenerationConfig(num_images=6).num_images == 6


def test_output_files_follow_the_umask(tmp_path: Path) -> None:
    # In a child process: the umask is the process's, read when sketchgen is imported.
    script = (
        "import os, sys; os.umask(0o027); from sketchgen.cli import main; "
        "sys.exit(main(['generate', 'golf', '-n', '1', '--output-dir', sys.argv[1]]))"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, capture_output=True)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.name for p in files} == {"sketch_0.png", "metadata.json"}
    assert all(p.stat().st_mode & 0o777 == 0o640 for p in files)


def test_refine_takes_the_sketch_number_the_page_shows_and_names_the_parent(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = _run(
        capsys, "generate", "golf", "-n", "2", "--seed", "3", "--json", "--output-dir",
        str(tmp_path),
    )  # fmt: skip
    done = json.loads(out.splitlines()[-1])
    job_dir = done["output_dir"]
    code, out, _ = _run(
        capsys, "refine", job_dir, "2", "more exaggerated", "--output-dir", str(tmp_path)
    )
    assert code == 0 and f"refined from job {done['job_id']}, sketch 2" in out
    refined = sorted(p for p in tmp_path.iterdir() if p.name != Path(job_dir).name)[-1]
    parent = json.loads((refined / "metadata.json").read_text())["parent"]
    assert parent == {"job_id": done["job_id"], "index": 1, "instruction": "more exaggerated"}
    # The file name works too, and 0 is not a sketch number.
    code, _, _ = _run(
        capsys, "refine", job_dir, "sketch_0.png", "zoom in", "--output-dir", str(tmp_path)
    )
    assert code == 0
    code, _, err = _run(capsys, "refine", job_dir, "0", "zoom in")
    assert code == 2 and "numbered from 1" in _one_error_line(err)


def test_an_os_error_without_a_file_name_says_no_none(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = _run(capsys, "generate", "golf", "--output-dir", str(blocker / "x"))
    assert code == 2 and "None" not in _one_error_line(err)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 40 KiB tmpfs: room for metadata.json and about two 1K sketches, not four."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_mid_job_leaves_a_folder_that_says_what_it_holds(
    capsys: pytest.CaptureFixture[str], small_disk: Path
) -> None:
    code, _, err = _run(
        capsys, "generate", "playful golf mascot", "-n", "4", "--output-dir", str(small_disk)
    )
    assert code == 1  # some sketches made, some not
    (folder,) = small_disk.iterdir()
    metadata = json.loads((folder / "metadata.json").read_text())
    ok = [s for s in metadata["sketches"] if s["status"] == "ok"]
    failed = [s for s in metadata["sketches"] if s["status"] == "failed"]
    assert ok and failed and len(ok) + len(failed) == 4 and metadata["status"] == "partial"
    assert all(s["error"].endswith("No space left on device") for s in failed)
    # Exactly the sketches recorded ok are there; no temporary files are left behind.
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["metadata.json", *(s["file"] for s in ok)]
    )
    assert "None" not in err and all(line.startswith("  sketch ") for line in err.splitlines())


def test_ctrl_c_mid_job_records_what_finished_and_cancels_the_rest(tmp_path: Path) -> None:
    from sketchgen.testing.gemini_server import FakeGeminiServer

    with FakeGeminiServer(default="held") as server:
        server.script(["image"])  # the first call is answered, the others held
        env = {
            **os.environ,
            "GEMINI_API_KEY": "test-key-not-a-secret-0123456789",
            "GOOGLE_GEMINI_BASE_URL": server.url,
        }
        argv = ["generate", "playful golf mascot", "-n", "3", "--output-dir", str(tmp_path)]
        proc = subprocess.Popen(
            [sys.executable, "-m", "sketchgen.cli", *argv],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        # The CLI is another process: its first file is polled for, there is no event.
        wait_until(
            lambda: list(tmp_path.glob("*/sketch_*.png")), "no sketch was written", timeout_s=60
        )
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        finally:
            proc.kill()
            server.release_held()
    err = proc.stderr.read() if proc.stderr else ""
    assert code == 130
    line = _one_error_line(err)
    assert "interrupted: 1 of 3 sketches saved" in line
    (folder,) = tmp_path.iterdir()
    metadata = json.loads((folder / "metadata.json").read_text())
    statuses = sorted(s["status"] for s in metadata["sketches"])
    assert statuses == ["cancelled", "cancelled", "ok"] and metadata["status"] == "partial"
    assert all(s["error"] == INTERRUPTED for s in metadata["sketches"] if s["status"] != "ok")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["metadata.json", *(s["file"] for s in metadata["sketches"] if s["status"] == "ok")]
    )


def _local_settings(data: Path, **extra: object) -> Settings:
    return Settings(
        job_store=f"sqlite:///{data / 'jobs.sqlite3'}",
        blob_url=f"file://{data / 'blobs'}",
        auth="dev",
        offline=True,
        **extra,
    )


def test_serve_ends_the_jobs_a_stopped_serve_left_running_and_frees_their_slots(
    tmp_path: Path,
) -> None:
    from sketchgen.bootstrap import build_service
    from sketchgen.cli import end_interrupted_jobs
    from sketchgen.generate import OfflineSketchAdapter
    from sketchgen.jobs import JobRequest
    from tests.helpers.fakes import CollectingQueue

    settings = _local_settings(tmp_path)
    queue = CollectingQueue()  # the stopped serve: its in-process tasks are gone with it
    before = build_service(settings, queue=queue, model=OfflineSketchAdapter())
    request = JobRequest(brief="playful golf mascot", style_id="loose-ink-mascot", num_images=3)
    job, _ = before.submission.submit_job("local", request)
    before.worker.run_sketch(queue.tasks[0])  # one sketch was drawn before it stopped
    assert before.jobs.get_job(job.job_id).status == "running"
    assert before.spend is not None and before.spend.usage("local")["active_jobs"] == 1

    after = build_service(settings, model=OfflineSketchAdapter())  # serve starts again
    assert end_interrupted_jobs(after) == [job.job_id]
    ended = after.jobs.get_job(job.job_id)
    assert ended is not None and ended.status == "partial" and ended.metadata_path
    assert sorted(s.status for s in ended.sketches.values()) == ["cancelled", "cancelled", "ok"]
    assert after.spend is not None and after.spend.usage("local")["active_jobs"] == 0
    assert after.blobs.exists(ended.metadata_path)
    assert end_interrupted_jobs(after) == []  # nothing left to end: safe to repeat


def test_serve_prints_the_url_to_open_and_serves_a_favicon(tmp_path: Path) -> None:
    import httpx

    from dev.processes import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sketchgen.cli", "serve", "--port", str(port),
         "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(2)]
        assert f"open http://127.0.0.1:{port}/ in a browser" in lines[1]
        assert "offline sketch model" in lines[1]
        icon = httpx.get(f"http://127.0.0.1:{port}/favicon.ico", timeout=30)
        assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
        assert b"<svg" in icon.content
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_local_offline_serve_applies_no_paid_plan_limits(tmp_path: Path) -> None:
    from sketchgen import bootstrap
    from sketchgen.jobs import JobRequest

    service = bootstrap.Instance(bootstrap.local_settings(tmp_path, offline=True)).service()
    assert service.spend is None  # the local plan: nothing billed, nothing to limit
    # Pro at 4K, refused to the free plan in the cloud, is drawn (offline) locally.
    request = JobRequest(
        brief="golf", style_id="loose-ink-mascot", num_images=1, model="pro", image_size="4K"
    )
    job, _ = service.submission.submit_job("local", request)
    assert job.job_id


def test_the_job_view_and_events_say_which_model_drew(tmp_path: Path) -> None:
    from sketchgen.bootstrap import build_service
    from sketchgen.generate import OfflineSketchAdapter
    from sketchgen.jobs import JobRequest

    service = build_service(_local_settings(tmp_path), model=OfflineSketchAdapter())
    request = JobRequest(brief="golf", style_id="loose-ink-mascot", num_images=1)
    job, _ = service.submission.submit_job("local", request)
    service.queue.join()
    state = service.jobs.get_job(job.job_id).sketches["0"]
    assert state.model_used == OFFLINE_MODEL_ID
    page = (Path(__file__).parents[2] / "lib/sketchgen/web/app.js").read_text()
    assert f'OFFLINE_MODEL_ID = "{OFFLINE_MODEL_ID}"' in page  # the page badges that id


def test_a_style_made_with_the_cli_is_seen_by_list_show_generate_and_the_page(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from sketchgen.bootstrap import LOCAL_OWNER, web_config
    from sketchgen.styles import PACKAGED_STYLES_DIR

    refs = tmp_path / "refs"
    refs.mkdir()
    for name in ("golf-mascot", "space-fox"):
        source = PACKAGED_STYLES_DIR / "loose-ink-mascot" / "references" / f"{name}.png"
        (refs / f"{name}.png").write_bytes(source.read_bytes())
    data = ["--data-dir", str(tmp_path / "serve")]
    code, out, _ = _run(capsys, "styles", "create", "Team ink", "--from-folder", str(refs), *data)
    assert code == 0
    style_id = json.loads(out)["style_id"]

    code, out, _ = _run(capsys, "styles", "list", "--json", *data)
    listed = {s["id"]: s for s in json.loads(out)["styles"]}
    assert code == 0 and listed[style_id]["owner"] == LOCAL_OWNER
    assert listed["loose-ink-mascot"]["owner"] == "built-in"
    code, out, _ = _run(capsys, "styles", "show", style_id, *data)
    assert code == 0 and json.loads(out)["name"] == "Team ink"

    code, out, _ = _run(
        capsys, "generate", "golf mascot", "--style", style_id, "-n", "1", "--json",
        "--output-dir", str(tmp_path / "out"), *data,
    )  # fmt: skip
    assert code == 0
    metadata = json.loads(Path(json.loads(out.splitlines()[-1])["metadata_path"]).read_text())
    assert metadata["style_id"] == style_id and metadata["reference_images"]
    # The page of `sketchgen serve` signs in as the same local owner.
    assert web_config(_local_settings(tmp_path))["devUid"] == LOCAL_OWNER


def test_a_network_failure_is_said_once_naming_the_host(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from dev.processes import free_port
    from sketchgen.settings import get_settings

    port = free_port()  # nothing listens there
    monkeypatch.setenv("GEMINI_API_KEY", "test-key-not-a-secret-0123456789")
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("SKETCHGEN_MAX_ATTEMPTS", "1")
    get_settings.cache_clear()
    code, out, err = _run(capsys, "generate", "golf", "-n", "3", "--output-dir", str(tmp_path))
    assert code == 1 and "0/3 sketches" in out
    assert err.splitlines() == [
        f"  sketches 1, 2, 3 failed: could not reach Gemini at 127.0.0.1:{port} "
        "(ConnectError: All connection attempts failed)"
    ]


def test_regenerate_sees_the_cli_jobs_too(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_dir = ["--output-dir", str(tmp_path / "out")]
    code, out, _ = _run(capsys, "generate", "golf", "-n", "2", "--seed", "4", "--json", *out_dir)
    original = json.loads(out.splitlines()[-1])["job_id"]
    code, out, err = _run(
        capsys, "regenerate", "--style", "loose-ink-mascot", "--data-dir",
        str(tmp_path / "serve"), *out_dir,
    )  # fmt: skip
    assert code == 0, err
    (record,) = [json.loads(line) for line in out.splitlines()]
    assert record["regenerated_from"] == original and record["status"] == "done"
    metadata = json.loads((Path(record["output_dir"]) / "metadata.json").read_text())
    assert metadata["regenerated_from"] == original and metadata["config"]["seed"] == 4
    # An original only: running it again does not regenerate the regeneration.
    code, out, _ = _run(
        capsys, "regenerate", "--jobs", original, "--data-dir", str(tmp_path / "serve"),
        *out_dir,
    )  # fmt: skip
    assert code == 0 and json.loads(out)["regenerated_from"] == original
