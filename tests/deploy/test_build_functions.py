"""scripts/build_functions.py: what `make build` stages and zips for Terraform to upload."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "build_functions.py"
NAMES = ("generate", "sketch_worker", "stream")
# The entry points Terraform deploys from each folder (infra/terraform/environments/*/main.tf).
ENTRY_POINTS = {
    "generate": ("generate", "regenerate"),
    "sketch_worker": ("sketch_worker",),
    "stream": ("stream",),
}


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_functions", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


build_functions = _load_script()


@pytest.fixture
def src_root(tmp_path: Path) -> Path:
    """A throwaway tree shaped like the repo: functions/<name>/ and lib/sketchgen/."""
    root = tmp_path / "src"
    for name in NAMES:
        folder = root / "functions" / name
        folder.mkdir(parents=True)
        (folder / "main.py").write_text(f"def {name}(request):\n    return 'ok'\n")
        (folder / "requirements.txt").write_text("functions-framework==3.10.2\n")
    package = root / "lib" / "sketchgen"
    (package / "generate").mkdir(parents=True)
    (package / "__init__.py").write_text('__version__ = "0"\n')
    (package / "py.typed").write_text("")
    (package / "generate" / "__init__.py").write_text("")
    (package / "styles" / "data" / "ink").mkdir(parents=True)
    (package / "styles" / "data" / "ink" / "style.json").write_text("{}\n")
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"\0junk")
    (package / "stale.pyc").write_bytes(b"\0junk")
    (package / "tests").mkdir()
    (package / "tests" / "test_x.py").write_text("def test_x(): pass\n")
    return root


def _names_in(zip_path: Path) -> list[str]:
    with zipfile.ZipFile(zip_path) as archive:
        return archive.namelist()


def test_zip_holds_main_requirements_and_the_package(src_root: Path, tmp_path: Path) -> None:
    zips = build_functions.build(src_root, tmp_path / "out")

    assert set(zips) == set(NAMES)
    for name, zip_path in zips.items():
        names = _names_in(zip_path)
        assert {"main.py", "requirements.txt", "sketchgen/__init__.py"} <= set(names)
        assert "sketchgen/styles/data/ink/style.json" in names  # package data travels too
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
        assert not [n for n in names if n.startswith("sketchgen/tests/")]
        assert names == sorted(names)
        with zipfile.ZipFile(zip_path) as archive:
            assert archive.read("main.py").decode().startswith(f"def {name}(")
            assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_zip_name_is_the_hash_of_its_bytes(src_root: Path, tmp_path: Path) -> None:
    for name, zip_path in build_functions.build(src_root, tmp_path / "out").items():
        digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()[:12]
        assert zip_path.name == f"{name}-{digest}.zip"


def test_two_builds_give_the_same_bytes(src_root: Path, tmp_path: Path) -> None:
    first = build_functions.build(src_root, tmp_path / "one")
    # Same content, different timestamps and build folder: nothing may change.
    for path in (src_root / "lib").rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    second = build_functions.build(src_root, tmp_path / "two")

    assert {n: p.name for n, p in first.items()} == {n: p.name for n, p in second.items()}
    for name in NAMES:
        assert first[name].read_bytes() == second[name].read_bytes()


def test_only_changed_functions_get_a_new_hash(src_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    before = build_functions.build(src_root, out)
    (src_root / "functions" / "stream" / "main.py").write_text("def stream(r):\n    return 1\n")
    after = build_functions.build(src_root, out)

    assert after["stream"].name != before["stream"].name
    assert not before["stream"].exists()  # the stale zip of that function is removed
    assert after["generate"] == before["generate"]
    assert after["sketch_worker"] == before["sketch_worker"]

    (src_root / "lib" / "sketchgen" / "__init__.py").write_text('__version__ = "1"\n')
    again = build_functions.build(src_root, out)
    assert all(again[name].name != after[name].name for name in NAMES)


def test_manifest_maps_each_function_to_its_zip(src_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    zips = build_functions.build(src_root, out)

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest == {name: zips[name].name for name in NAMES}
    assert all((out / relative).is_file() for relative in manifest.values())


def test_cli_builds_into_out(src_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli-out"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--src-root", str(src_root), "--out", str(out), "stream"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert list(json.loads((out / "manifest.json").read_text())) == ["stream"]


@pytest.mark.parametrize("missing", ["main.py", "requirements.txt"])
def test_missing_function_file_fails_clearly(src_root: Path, tmp_path: Path, missing: str) -> None:
    (src_root / "functions" / "sketch_worker" / missing).unlink()
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--src-root", str(src_root), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert f"functions/sketch_worker/{missing} is missing" in result.stderr
    assert "Traceback" not in result.stderr


# -- the real functions: install exactly what is deployed, then import it --------------------


@pytest.fixture(scope="module")
def staged_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("deploy-smoke")
    build_functions.build(REPO_ROOT, out)
    return out


@pytest.mark.deploy_smoke
@pytest.mark.parametrize("name", NAMES)
def test_staged_function_installs_and_imports(staged_repo: Path, tmp_path: Path, name: str) -> None:
    """What Cloud Build does: a clean Python, only requirements.txt, then import main."""
    stage = staged_repo / name
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        # Every deployed function has its project (infra/functions.yaml, shared_env): main.py
        # builds its service and API as it is imported.
        "SKETCHGEN_PROJECT": "smoke-test-project",
        **{k: v for k, v in os.environ.items() if k.startswith("PIP_")},  # index, cache
    }
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-r", "requirements.txt"],
        cwd=stage,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=1200,
    )
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-4000:]

    checks = "; ".join(f"assert callable(main.{entry})" for entry in ENTRY_POINTS[name])
    imported = subprocess.run(
        [str(python), "-c", f"import main; {checks}"],
        cwd=stage,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert imported.returncode == 0, imported.stderr[-4000:]
