"""Every third-party package lib/sketchgen imports is declared in pyproject.toml: a core
dependency, or the extra ([gcp], [s3]) of the adapters that need it."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Imported only by the test helper shipped for users' tests, which brings its own server.
NOT_RUNTIME = {"sketchgen.testing"}


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower() for r in requirements}


def _imported_top_levels() -> set[str]:
    names = set()
    for path in (ROOT / "lib" / "sketchgen").rglob("*.py"):
        module = ".".join(path.relative_to(ROOT / "lib").with_suffix("").parts)
        if any(module.startswith(prefix) for prefix in NOT_RUNTIME):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
    return {n for n in names if n.split(".")[0] not in sys.stdlib_module_names | {"sketchgen"}}


def test_every_imported_distribution_is_declared() -> None:
    distributions = importlib.metadata.packages_distributions()
    declared = _declared()
    missing = set()
    for name in _imported_top_levels():
        # google.* is a namespace shared by several distributions: match the longest prefix.
        parts = name.split(".")
        candidates = {
            dist.lower()
            for i in range(len(parts), 0, -1)
            for dist in distributions.get(".".join(parts[:i]), [])
        } or {d.lower() for d in distributions.get(parts[0], [])}
        if candidates and not candidates & declared:
            missing.add(f"{name} ({', '.join(sorted(candidates))})")
    assert not missing, f"imported but not in pyproject.toml: {sorted(missing)}"
