#!/usr/bin/env bash
# Lint the Terraform under infra/terraform (make lint-infra):
#   1. terraform fmt -check
#   2. environments/dev and environments/prod use environments/_shared/{main,outputs,variables,
#      monitoring}.tf (symlinks), so the two can never drift apart; an environment's own files
#      are versions.tf (its state prefix) and defaults_override.tf (its defaults, nothing else)
#   3. each environment's variables parse and take its defaults (no provider needed: a copy of
#      variables.tf and defaults_override.tf alone, planned), and prod refuses http origins
#   4. checkov, offline, with zero failed checks (skips are inline, each with its reason)
#   5. a copy of the tree as Terraform reads it (infra/terraform, infra/functions.yaml,
#      firestore.rules) holds every file the configuration reads with file(); then terraform
#      init -backend=false && terraform validate in each environment, when the providers can
#      be installed here; otherwise one line says validate was skipped.
#
# checkov comes from $CHECKOV, or PATH, or build/venv-infra (created from
# requirements-infra.txt on first use: checkov's pins clash with the dev tools in .venv).
set -euo pipefail
cd "$(dirname "$0")/.."

TF_DIR=infra/terraform
ENVIRONMENTS=(dev prod)
INFRA_VENV=build/venv-infra

# A CLI config that points at a missing file only adds warnings to every command.
if [[ -n "${TF_CLI_CONFIG_FILE:-}" && ! -f "${TF_CLI_CONFIG_FILE}" ]]; then
  unset TF_CLI_CONFIG_FILE
fi
export TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1

# terraform is not in PyPI, Debian or npm: where it is missing, fmt and validate are skipped
# with one line (set REQUIRE_TERRAFORM=1 to fail instead); checkov does not need it.
have_terraform=1
if ! command -v terraform >/dev/null 2>&1; then
  if [[ "${REQUIRE_TERRAFORM:-0}" == 1 ]]; then
    echo "check_terraform: terraform is not installed" >&2
    exit 1
  fi
  have_terraform=0
  echo "terraform fmt and validate skipped: terraform is not installed on this machine"
fi

if [[ $have_terraform == 1 ]]; then
  echo "== terraform fmt"
  terraform fmt -check -recursive -diff "$TF_DIR"
fi

SHARED_FILES=(main.tf outputs.tf variables.tf monitoring.tf)
echo "== environments share ${SHARED_FILES[*]}"
for env in dev prod; do
  for file in "${SHARED_FILES[@]}"; do
    if [[ "$(readlink "$TF_DIR/environments/$env/$file")" != "../_shared/$file" ]]; then
      echo "check_terraform: environments/$env/$file must be a symlink to ../_shared/$file; put differences in defaults_override.tf" >&2
      exit 1
    fi
  done
done

if [[ $have_terraform == 1 ]]; then
  echo "== each environment's variables and defaults"
  vars=$(mktemp -d)
  for env in dev prod; do
    mkdir -p "$vars/$env"
    cp "$TF_DIR/environments/_shared/variables.tf" "$TF_DIR/environments/$env/defaults_override.tf" "$vars/$env/"
    echo 'output "environment" { value = var.environment }' >"$vars/$env/outputs.tf"
    terraform -chdir="$vars/$env" init -backend=false -input=false -no-color >/dev/null
    plan=$(terraform -chdir="$vars/$env" plan -input=false -no-color -var project_id=p \
      -var 'cors_origins=["https://app.example.com"]' 2>&1) || { echo "$plan" >&2; exit 1; }
    if ! grep -q "environment = \"$env\"" <<<"$plan"; then
      echo "check_terraform: environments/$env does not default to environment = \"$env\"" >&2
      exit 1
    fi
  done
  if terraform -chdir="$vars/prod" plan -input=false -no-color -var project_id=p \
    -var 'cors_origins=["http://app.example.com"]' >/dev/null 2>&1; then
    echo "check_terraform: prod accepted an http:// CORS origin" >&2
    exit 1
  fi
  rm -rf "$vars"
fi

echo "== checkov"
checkov_bin="${CHECKOV:-}"
if [[ -z "$checkov_bin" ]]; then
  if command -v checkov >/dev/null 2>&1; then
    checkov_bin=$(command -v checkov)
  else
    if [[ ! -x "$INFRA_VENV/bin/checkov" ]]; then
      echo "installing checkov into $INFRA_VENV (requirements-infra.txt)"
      python3 -m venv "$INFRA_VENV"
      if ! "$INFRA_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r requirements-infra.txt >"$INFRA_VENV/install.log" 2>&1; then
        cat "$INFRA_VENV/install.log" >&2
        exit 1
      fi
    fi
    checkov_bin="$INFRA_VENV/bin/checkov"
  fi
fi
# Offline: no Prisma Cloud platform, no guideline mapping download, no package (SCA) scan.
(
  unset BC_API_KEY PRISMA_API_URL
  export BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false
  export CHECKOV_NO_OUTPUT_COLOR=1 ANSI_COLORS_DISABLED=1
  "$checkov_bin" -d "$TF_DIR" --framework terraform --quiet --compact --skip-download
)

[[ $have_terraform == 1 ]] || exit 0
echo "== terraform validate"
# Validate a copy: init writes .terraform/ and a lock file we do not want left in the tree.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/infra"
cp -R "$TF_DIR" "$work/infra/terraform"
cp infra/functions.yaml "$work/infra/"
cp firestore.rules "$work/"
# Every file("${path.module}/...") the environments read must be in the copy, or validate
# fails there for want of a file rather than for the configuration.
for env in "${ENVIRONMENTS[@]}"; do
  dir="$work/infra/terraform/environments/$env"
  while read -r relative; do
    if [[ ! -f "$dir/$relative" ]]; then
      echo "check_terraform: environments/$env reads $relative, which the validation copy lacks" >&2
      exit 1
    fi
  done < <(cat "$dir"/*.tf | grep -o 'file("${path.module}/[^"]*")' | sed -e 's|^file("${path.module}/||' -e 's|")$||' | sort -u)
done
if [[ -z "${TF_PLUGIN_CACHE_DIR:-}" && -d "$HOME/.terraform.d/plugin-cache" ]]; then
  export TF_PLUGIN_CACHE_DIR="$HOME/.terraform.d/plugin-cache"
fi
for env in "${ENVIRONMENTS[@]}"; do
  dir="$work/infra/terraform/environments/$env"
  rm -rf "$dir/.terraform" "$dir/.terraform.lock.hcl"
  if ! init_log=$(timeout 180 terraform -chdir="$dir" init -backend=false -input=false -no-color 2>&1); then
    if grep -qiE "registry\.terraform\.io|could not connect|failed to query available provider|failed to install provider|no such host|timeout|i/o timeout|dial tcp|could not resolve|network is unreachable" <<<"$init_log"; then
      echo "terraform validate skipped: google provider not reachable from this machine"
      exit 0
    fi
    echo "$init_log" >&2
    echo "check_terraform: terraform init failed in environments/$env" >&2
    exit 1
  fi
  terraform -chdir="$dir" validate -no-color
done
