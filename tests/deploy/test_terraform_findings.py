"""The Terraform review of issue 25, one test per finding: each fails on the configuration as it
was. Terraform cannot plan here (no provider), so the HCL is read with python-hcl2, and the
arithmetic of the worker's time budget is evaluated from the locals as written."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import hcl2
import pytest
from opentelemetry.sdk.metrics import MeterProvider

from dev.definition import REPO, load_definition
from dev.topology import DevTopology
from sketchgen.telemetry import Instruments

TF = REPO / "infra" / "terraform"
SHARED = TF / "environments" / "_shared"
DEFINITION = load_definition()


def _load(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return dict(hcl2.load(handle))


def _q(key: str) -> str:
    return key.strip('"')


def _resources(doc: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        _q(name): body
        for block in doc.get("resource", [])
        for key, named in block.items()
        if _q(key) == kind
        for name, body in named.items()
    }


def _locals(doc: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in doc["locals"]:
        merged.update(block)
    return merged


def _variables(path: Path) -> dict[str, dict[str, Any]]:
    return {_q(k): v for block in _load(path).get("variable", []) for k, v in block.items()}


@pytest.fixture(scope="module")
def main() -> dict[str, Any]:
    return _load(SHARED / "main.tf")


@pytest.fixture(scope="module")
def tf_locals(main: dict[str, Any]) -> dict[str, Any]:
    return _locals(main)


def test_the_vector_index_names_name_before_the_vector_field() -> None:
    # Firestore stores every vector index with __name__ before the vector field: an index that
    # does not say so differs from what the API returns, and every plan replaces it.
    text = (TF / "modules" / "firestore" / "main.tf").read_text()
    vector = text[text.index('resource "google_firestore_index" "vector"') :]
    vector = vector[: vector.index("\n}\n")]
    filters, name, field = (
        vector.index('dynamic "fields"'),
        vector.index('field_path = "__name__"'),
        vector.index("vector_config"),
    )
    assert filters < name < field
    indexes = _resources(_load(TF / "modules" / "firestore" / "main.tf"), "google_firestore_index")
    (index,) = indexes["vector"]["fields"][:1]
    assert (_q(index["field_path"]), _q(index["order"])) == ("__name__", "ASCENDING")


def test_a_function_waits_for_its_grants_to_propagate() -> None:
    module = _load(TF / "modules" / "function" / "main.tf")
    (wait_name,) = _resources(module, "time_sleep")
    wait = _resources(module, "time_sleep")[wait_name]
    assert set(wait["depends_on"]) == {
        "${google_project_iam_member.this}",
        "${google_secret_manager_secret_iam_member.this}",
    }
    assert re.fullmatch(r'"?\$\{var\.\w+\}"?|"\d+s"', wait["create_duration"])
    # A new grant (a role, a secret) waits again before the revision that needs it.
    assert {"project_roles", "secrets"} <= set(wait["triggers"])
    function = _resources(module, "google_cloudfunctions2_function")["this"]
    assert function["depends_on"] == [f"${{time_sleep.{wait_name}}}"]
    versions = (TF / "modules" / "function" / "versions.tf").read_text()
    assert "hashicorp/time" in versions


def test_regenerate_shares_the_quota_and_has_the_workers_memory(tf_locals: dict[str, Any]) -> None:
    quota = {"SKETCHGEN_MODEL_RPM", "SKETCHGEN_QUOTA_WAIT_S", "SKETCHGEN_QUOTA_HORIZON_S"}
    for name in ("sketch_worker", "regenerate"):
        assert quota <= set(DEFINITION.env_names(name)), name
    sizing = tf_locals["sizing"]
    assert sizing["regenerate"]["memory"] == sizing["sketch_worker"]["memory"] == '"2Gi"'


def _evaluate(expression: str, values: dict[str, float]) -> float:
    python = expression.removeprefix("${").removesuffix("}")
    for name, value in sorted(values.items(), key=lambda item: -len(item[0])):
        python = python.replace(name, repr(value))
    assert re.fullmatch(r"[\d.,\s()+\-*/a-z]*", python), python
    return float(eval(python, {"__builtins__": {}}, {"floor": math.floor, "min": min}))


_TIMING_LOCALS = (
    "ack_deadline_max_s",
    "lease_wait_s",
    "quota_wait_s",
    "worker_overhead_s",
    "model_timeout_max",
    "worker_timeout_s",
    "ack_deadline_s",
    "lease_s",
)


def terraform_timing(tf_locals: dict[str, Any], model_timeout_s: float) -> dict[str, float]:
    """Terraform's timing locals, evaluated as written for one var.model_timeout_s, with
    local.delivery from the definition (what its yamldecode gives)."""
    values = {f"local.delivery.{k}": float(v) for k, v in DEFINITION.delivery.items()}
    values["var.model_timeout_s"] = model_timeout_s
    found = {}
    for name in _TIMING_LOCALS:
        found[name] = _evaluate(str(tf_locals[name]), values)
        values[f"local.{name}"] = found[name]
    return found


def test_the_lease_wait_is_inside_the_workers_time_budget(tf_locals: dict[str, Any]) -> None:
    # The wait for another delivery's lease (SKETCHGEN_LEASE_WAIT_S) plus the rest of the
    # delivery must answer within Pub/Sub's 600 s: unset, it was 330 s + a draw > 360 s.
    assert "SKETCHGEN_LEASE_WAIT_S" in DEFINITION.env_names("sketch_worker")
    assert tf_locals["env_values"]["SKETCHGEN_LEASE_WAIT_S"] == "${tostring(local.lease_wait_s)}"
    assert "local.lease_wait_s" in tf_locals["worker_timeout_s"]
    default = _variables(SHARED / "variables.tf")["model_timeout_s"]["default"]
    longest = terraform_timing(tf_locals, default)["model_timeout_max"]
    timing = terraform_timing(tf_locals, longest)
    assert timing["worker_timeout_s"] <= timing["ack_deadline_max_s"]
    assert timing["lease_wait_s"] + 2 * longest < timing["worker_timeout_s"]
    assert default <= longest
    # make dev runs with the cloud's value.
    assert float(DevTopology().local_values()["SKETCHGEN_LEASE_WAIT_S"]) == timing["lease_wait_s"]


def test_the_dead_letter_push_has_its_own_retry_and_dead_letter_policy() -> None:
    module = _load(TF / "modules" / "pubsub" / "main.tf")
    subscriptions = _resources(module, "google_pubsub_subscription")
    push = subscriptions["dead_letter_push"]
    assert push["retry_policy"]
    (policy,) = push["dead_letter_policy"]
    # Not back onto the topic it reads (that would loop), and kept for a person to read.
    assert "dead_letter[" not in policy["dead_letter_topic"]
    target = re.search(r"google_pubsub_topic\.(\w+)\[", policy["dead_letter_topic"])
    assert target is not None
    held = [s for s in subscriptions.values() if f"google_pubsub_topic.{target[1]}[" in s["topic"]]
    assert held and all("push_config" not in s for s in held)
    # The Pub/Sub agent may publish the forwarded letters and acknowledge the originals.
    publishers = _resources(module, "google_pubsub_topic_iam_member")
    assert any(target[1] in p["topic"] for p in publishers.values())
    subscribers = _resources(module, "google_pubsub_subscription_iam_member")
    assert any("dead_letter_push" in s["subscription"] for s in subscribers.values())


def test_refused_pushes_do_not_use_up_the_workers_attempts(
    main: dict[str, Any], tf_locals: dict[str, Any]
) -> None:
    # Pub/Sub counts a 429 from Cloud Run (instances busy) as a failed delivery and offers no
    # way to exempt it; the worker counts its own draws (SKETCHGEN_MAX_DELIVERIES) and the
    # subscription's dead-letter limit is set above them.
    assert tf_locals["env_values"]["SKETCHGEN_MAX_DELIVERIES"] == (
        "${tostring(var.max_delivery_attempts)}"
    )
    topic = next(b['"sketch_topic"'] for b in main["module"] if '"sketch_topic"' in b)
    assert topic["push"]["max_delivery_attempts"] == "${local.subscription_delivery_attempts}"
    attempts = tf_locals["subscription_delivery_attempts"]
    for app_attempts in (5, 10, 40):
        pushes = _evaluate(attempts, {"var.max_delivery_attempts": app_attempts})
        assert min(100, 2 * app_attempts) <= pushes <= 100


def test_environments_share_one_variables_file_and_keep_only_defaults() -> None:
    shared = _variables(SHARED / "variables.tf")
    for env in ("dev", "prod"):
        folder = TF / "environments" / env
        assert (folder / "variables.tf").is_symlink()
        assert (folder / "variables.tf").readlink() == Path("../_shared/variables.tf")
        overrides = _variables(folder / "defaults_override.tf")
        assert set(overrides) <= set(shared), env
        for name, body in overrides.items():
            assert set(body) - {"__is_block__"} == {"default"}, (env, name)
        assert _q(overrides["environment"]["default"]) == env
    # No other .tf file of an environment declares variables.
    for env in ("dev", "prod"):
        for path in (TF / "environments" / env).glob("*.tf"):
            if path.name not in {"variables.tf", "defaults_override.tf"}:
                assert not re.search(r'^variable "', path.read_text(), re.M), path


def test_the_web_url_ends_with_a_slash() -> None:
    # The page's asset paths are relative: without the slash they resolve above the function.
    outputs = {_q(k): v for b in _load(SHARED / "outputs.tf")["output"] for k, v in b.items()}
    assert outputs["web_url"]["value"] == '"${module.function["generate"].url}/"'


def test_the_org_policy_precondition_reads_the_effective_policy(
    main: dict[str, Any], tf_locals: dict[str, Any]
) -> None:
    data = {_q(k): v for block in main["data"] for k, v in block.items()}
    assert "google_project_organization_policy" not in data  # the project-level policy only
    (http,) = data["http"].values()
    assert ":getEffectiveOrgPolicy" in http["url"]
    assert "iam.allowedPolicyMemberDomains" in http["request_body"]
    assert "data.http." in tf_locals["member_domains"]
    limits = _resources(main, "terraform_data")["limits"]
    conditions = [p["condition"] for p in limits["lifecycle"][0]["precondition"]]
    assert any("local.domain_restricted" in c for c in conditions)
    versions = (TF / "environments" / "dev" / "versions.tf").read_text()
    assert "hashicorp/http" in versions


# Language features the configuration uses, and the first Terraform that parses them.
_FEATURES = {
    "cross-variable validation": (
        r"validation \{[^}]*var\.environment[^}]*var\.cors_origins",
        (1, 9),
    ),
    "check blocks": (r'^check "', (1, 5)),
    "terraform_data": (r'resource "terraform_data"', (1, 4)),
    "optional() defaults": (r"optional\(\w+, ", (1, 3)),
}


def _lower_bound(constraint: str) -> tuple[int, int]:
    found = re.search(r">=\s*(\d+)\.(\d+)", constraint)
    assert found, constraint
    return int(found[1]), int(found[2])


def test_versions_allow_only_terraform_that_parses_the_configuration() -> None:
    text = "\n".join(p.read_text() for p in TF.rglob("*.tf") if not p.is_symlink())
    used = [v for pattern, v in _FEATURES.values() if re.search(pattern, text, re.M | re.S)]
    needed = max(used, default=(1, 0))
    assert needed >= (1, 9)  # the shared variables validate cors_origins by environment
    for path in TF.rglob("versions.tf"):
        constraint = re.search(r'required_version\s*=\s*"([^"]+)"', path.read_text())
        assert constraint, path
        assert _lower_bound(constraint[1]) >= needed, path
        assert "< 2.0" in constraint[1], path


def test_the_dashboard_and_alerts_watch_the_services_metrics() -> None:
    monitoring = _load(SHARED / "monitoring.tf")
    policies = _resources(monitoring, "google_monitoring_alert_policy")
    assert {"dead_letters", "errors", "time_to_done", "daily_spend"} <= set(policies)
    for name, policy in policies.items():
        assert policy["notification_channels"] == "${var.notification_channels}", name
    text = (SHARED / "monitoring.tf").read_text()
    assert "dead_letter_message_count" in text
    assert 'response_code_class = \\"5xx\\"' in text
    assert "REDUCE_PERCENTILE_99" in text
    spend = policies["daily_spend"]["conditions"][0]["condition_threshold"][0]
    # The alert warns at a fraction of the same ceiling the service enforces (one variable).
    assert spend["threshold_value"] == (
        "${var.spend_alert_fraction * coalesce(var.deployment_daily_usd, 0)}"
    )
    assert _resources(monitoring, "google_monitoring_dashboard")
    # The metric names Terraform reads are the ones the service writes.
    instruments = Instruments(MeterProvider().get_meter("names"))
    names = {i.name for i in vars(instruments).values()}
    # The exporter writes workload.googleapis.com/NAME on generic_task (one series an instance).
    assert re.search(r'workload += "resource.type = \\"generic_task\\".*workload\.googleapis', text)
    read = set(re.findall(r"\$\{local\.workload\}/(sketchgen\.[a-z_.]+)", text))
    assert read == names
    for variable in ("notification_channels", "deployment_daily_usd", "spend_alert_fraction"):
        assert variable in _variables(SHARED / "variables.tf")
    for env in ("dev", "prod"):
        link = TF / "environments" / env / "monitoring.tf"
        assert link.readlink() == Path("../_shared/monitoring.tf")


def test_the_metric_descriptors_exist_before_the_alerts_and_match_the_instruments() -> None:
    # Cloud Monitoring 404s an alert policy on a metric type no one has written yet.
    monitoring = _load(SHARED / "monitoring.tf")
    descriptors = {_q(k): v for k, v in _locals(monitoring)["metric_descriptors"].items()}
    instruments = Instruments(MeterProvider().get_meter("names"))
    kinds = {
        "_Histogram": ("CUMULATIVE", "DISTRIBUTION"),
        "_Counter": ("CUMULATIVE", None),
        "_UpDownCounter": ("GAUGE", None),
    }
    assert set(descriptors) == {i.name for i in vars(instruments).values()}
    for instrument in vars(instruments).values():
        declared = descriptors[instrument.name]
        assert _q(declared["unit"]) == instrument.unit, instrument.name
        assert _q(declared["description"]) == instrument.description, instrument.name
        kind, value = kinds[type(instrument).__name__]
        assert _q(declared["kind"]) == kind, instrument.name
        assert value is None or _q(declared["value"]) == value, instrument.name
    for name, policy in _resources(monitoring, "google_monitoring_alert_policy").items():
        assert "${time_sleep.metric_descriptors}" in policy["depends_on"], name


def test_every_function_may_write_traces_and_metrics(tf_locals: dict[str, Any]) -> None:
    roles = tf_locals["functions"]
    assert "roles/cloudtrace.agent" in roles and "roles/monitoring.metricWriter" in roles
    assert tf_locals["env_values"]["SKETCHGEN_TELEMETRY"] == '"cloud"'
    apis = (SHARED / "main.tf").read_text()
    assert '"cloudtrace.googleapis.com"' in apis and '"monitoring.googleapis.com"' in apis
