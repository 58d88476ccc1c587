import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sketchgen.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        ([], "command"),
        (["generate"], "brief"),
        (["generate", "golf", "-n", "0"], "num-images"),
        (["generate", "golf", "-n", "9"], "num-images"),
        (["generate", "golf", "-n", "four"], "num-images"),
        (["generate", "golf", "--image-size", "8K"], "image-size"),
        (["generate", "golf", "--aspect-ratio", "7:5"], "aspect-ratio"),
        (["generate", "golf", "--seed", "-3"], "seed"),
        (["generate", "golf", "--seed", "x"], "seed"),
        (["generate", "golf", "--style", "nope"], "style_id"),
        (["generate", "golf", "--style", "../../etc"], "style_id"),
        (["generate", "   ", "--offline"], "brief"),
        (["generate", "x" * 2001, "--offline"], "brief"),  # MAX_BRIEF_CHARS is 2000
        (["generate", "golf", "--bogus"], "--bogus"),
        (["styles", "show", "nope"], "style_id"),
        (["styles", "frobnicate"], "styles_command"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("sketchgen: error:")
    assert (
        needle in lines[0] or needle.replace("_", "-") in lines[0] or "invalid choice" in lines[0]
    )


def test_unwritable_output_dir_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = _run(capsys, "generate", "golf", "--offline", "--output-dir", str(blocker))
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_generate_json_lines(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = _run(
        capsys,
        "generate",
        "playful golf mascot",
        "--offline",
        "-n",
        "3",
        "--seed",
        "5",
        "--json",
        "--output-dir",
        str(tmp_path),
    )
    assert code == 0
    events = [json.loads(line) for line in out.splitlines()]
    sketches, done = events[:-1], events[-1]
    assert sorted(e["index"] for e in sketches) == [0, 1, 2]
    assert all(e["event"] == "sketch" and e["error"] is None for e in sketches)
    assert all(Path(e["path"]).is_file() and e["elapsed_s"] >= 0 for e in sketches)
    assert done["event"] == "done" and done["errors"] == {}
    assert Path(done["metadata_path"]).is_file() and len(done["images"]) == 3
    assert set(done) == {
        "event",
        "job_id",
        "output_dir",
        "metadata_path",
        "images",
        "errors",
        "model",
        "elapsed_s",
    }


def test_styles_list_and_show(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "styles", "list", "--json")
    ids = [s["id"] for s in json.loads(out)["styles"]]
    assert code == 0 and len(ids) >= 2
    code, out, _ = _run(capsys, "styles", "show", ids[0])
    assert code == 0 and json.loads(out)["id"] == ids[0]


def test_console_script_has_no_traceback_on_bad_input(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sketchgen.cli", "generate", "golf", "-n", "99"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_ctrl_c_stops_a_run_at_once_with_130(tmp_path: Path) -> None:
    """Ctrl-C while the model is answering: exit 130 now, not when the calls come back."""
    import os
    import signal

    from sketchgen.testing.gemini_server import FakeGeminiServer

    with FakeGeminiServer(default="held") as server:
        env = {
            **os.environ,
            "GEMINI_API_KEY": "test-key-not-a-secret-0123456789",
            "GOOGLE_GEMINI_BASE_URL": server.url,
            "SKETCHGEN_OUTPUT_DIR": str(tmp_path),
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "sketchgen.cli", "generate", "playful golf mascot", "-n", "3"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert server.wait_for_calls(3, timeout_s=60) == 3, "the calls never reached the model"
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        finally:
            proc.kill()
        # Still held: the process did not wait for the model to answer.
        assert not server.answered
        server.release_held()
    assert code == 130
    assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")


@pytest.mark.parametrize("enabled_before", [True, False])
def test_a_job_starts_without_collections_and_the_collector_is_left_as_it_was(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    enabled_before: bool,
) -> None:
    """Until a job's first sketch comes back (imports, plan, the model's client, the call)
    the garbage collector is off (docs/decisions/0066); afterwards it is as the caller had
    it."""
    import gc

    from sketchgen.generate.offline import OfflineSketchAdapter

    collecting_during_the_call: list[bool] = []
    draw = OfflineSketchAdapter.generate_image

    def recording(self: OfflineSketchAdapter, request: Any) -> Any:
        collecting_during_the_call.append(gc.isenabled())
        return draw(self, request)

    monkeypatch.setattr(OfflineSketchAdapter, "generate_image", recording)
    was = gc.isenabled()
    try:
        (gc.enable if enabled_before else gc.disable)()
        code, _, _ = _run(
            capsys, "generate", "golf", "--offline", "-n", "1", "--output-dir", str(tmp_path)
        )
        after = gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
    assert code == 0
    assert collecting_during_the_call == [False]  # the one sketch: before it came back
    assert after is enabled_before


def test_the_command_exits_without_walking_its_heap_again() -> None:
    """At exit the heap is frozen before the interpreter's finalisation (which would walk
    every object the run made: the SDK's types, pydantic's validators)."""
    code = (
        "import atexit, gc\n"
        "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"  # runs last
        "from sketchgen.cli import main\n"
        "main(['styles', 'list'])\n"
    )
    answer = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert answer.stdout.strip().splitlines()[-1] == "frozen True"
