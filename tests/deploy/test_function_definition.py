"""infra/functions.yaml is the one definition of the functions: Terraform and `make dev` both
deploy from it, and this fails the moment either side goes its own way.

Terraform cannot be planned here (no provider), so its side is read with python-hcl2: the
functions must come from the definition, and every variable name must have a value.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import hcl2
import pytest

from dev.definition import REPO, load_definition
from dev.topology import DevTopology

MAIN_TF = REPO / "infra" / "terraform" / "environments" / "_shared" / "main.tf"
DEFINITION = load_definition()


def _unquote(key: str) -> str:
    return key.strip('"')


@pytest.fixture(scope="module")
def terraform() -> dict[str, Any]:
    with MAIN_TF.open() as handle:
        return dict(hcl2.load(handle))


@pytest.fixture(scope="module")
def tf_locals(terraform: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in terraform["locals"]:
        merged.update(block)
    return merged


def _modules(terraform: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {_unquote(k): v for block in terraform["module"] for k, v in block.items()}


def _resources(terraform: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for block in terraform["resource"]:
        for key, named in block.items():
            if _unquote(key) == kind:
                found.update({_unquote(n): body for n, body in named.items()})
    return found


def test_every_function_is_deployed_from_the_definition(terraform: dict[str, Any]) -> None:
    modules = _modules(terraform)
    function = modules["function"]
    assert function["for_each"] == "${local.definition.functions}"
    assert function["environment"] == "${local.functions[each.key].environment}"
    assert function["secret_environment"] == "${local.functions[each.key].secrets}"
    # No other module deploys a function beside it (a hand-written twin would drift).
    others = [name for name, body in modules.items() if "function" in str(body.get("source", ""))]
    assert others == ["function"]
    assert not _resources(terraform, "google_cloudfunctions2_function")


def test_every_variable_name_has_a_value_in_terraform_and_locally(
    tf_locals: dict[str, Any],
) -> None:
    names = DEFINITION.all_env_names()
    assert names - set(tf_locals["env_values"]) == set(), "names with no Terraform value"
    assert set(tf_locals["env_values"]) - names == set(), "Terraform values no function gets"
    local = DevTopology().local_values()
    assert names - set(local) == set(), "names with no make dev value"
    secrets = {s for f in DEFINITION.functions.values() for s in f.secrets.values()}
    assert secrets == {_unquote(k) for k in tf_locals["secrets"]}


def test_sizing_covers_exactly_the_defined_functions(tf_locals: dict[str, Any]) -> None:
    assert set(tf_locals["sizing"]) == set(DEFINITION.functions)


def test_iam_is_derived_from_the_grants(terraform: dict[str, Any]) -> None:
    modules = _modules(terraform)
    assert modules["sketch_topic"]["publishers"] == '${local.publishers["sketch"]}'
    assert modules["regenerate_topic"]["publishers"] == '${local.publishers["regenerate"]}'
    assert modules["outputs_bucket"]["members"] == "${local.outputs_bucket_members}"
    signers = _resources(terraform, "google_service_account_iam_member")["signs_urls"]
    assert signers["for_each"] == "${local.url_signers}"
    # No grant to a function's account is written by hand anywhere else.
    text = MAIN_TF.read_text()
    text = text[: text.index("\nmoved {")]  # the moved blocks name the old modules on purpose
    assert not re.search(r"module\.(generate|stream|sketch_worker|regenerate)\b", text)


def test_each_function_source_and_entry_point_exist() -> None:
    for function in DEFINITION.functions.values():
        main = REPO / "functions" / function.source / "main.py"
        tree = ast.parse(main.read_text())
        defined = {
            node.name
            for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        }
        assert function.entry_point in defined, f"{main} has no {function.entry_point}()"


def test_secrets_reach_only_the_functions_that_mount_them() -> None:
    topology = DevTopology(values={"GEMINI_API_KEY": "developer-key"})
    topology.ports.update({"firestore": 1, "pubsub": 2, "storage_front": 3, "auth": 4})
    for name, function in DEFINITION.functions.items():
        env = topology.function_env(name)
        assert ("GEMINI_API_KEY" in env) == ("GEMINI_API_KEY" in function.secrets), name
        assert "GOOGLE_API_KEY" not in env


def test_a_variable_no_function_gets_is_refused_locally() -> None:
    with pytest.raises(ValueError, match="SKETCHGEN_ONLY_LOCAL"):
        DevTopology(values={"SKETCHGEN_ONLY_LOCAL": "1"})


def test_the_definition_names_only_topics_and_buckets_it_declares(tmp_path: Path) -> None:
    broken = tmp_path / "functions.yaml"
    text = (REPO / "infra" / "functions.yaml").read_text()
    broken.write_text(text.replace("publish: [sketch]", "publish: [sketchez]", 1))
    with pytest.raises(ValueError, match="sketchez"):
        load_definition(broken)


def test_telemetry_goes_to_the_cloud_there_and_to_files_under_make_devs_folder(
    tf_locals: dict[str, Any], tmp_path: Path
) -> None:
    assert "SKETCHGEN_TELEMETRY" in DEFINITION.shared_env
    assert tf_locals["env_values"]["SKETCHGEN_TELEMETRY"] == '"cloud"'
    topology = DevTopology(data_dir=tmp_path / "dev")
    # OTLP JSON lines under <data_dir>/traces (sketchgen.adapters.otel_export), which is where
    # `sketchgen trace` looks by default for make dev's generated_outputs/dev.
    assert topology.local_values()["SKETCHGEN_TELEMETRY"] == f"file://{tmp_path / 'dev'}"
    from sketchgen.cli_trace import DEFAULT_DIR

    assert DevTopology().data_dir / "traces" == REPO / DEFAULT_DIR
