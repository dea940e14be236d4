#!/usr/bin/env bash
# One source of truth for setting up driftrec: a virtual environment in .venv with the package
# and its test tools. Idempotent: re-running only reinstalls when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"

stamp="$VENV/.driftrec-setup"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
rllib_target="$VENV/compat/rllib"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$rllib_target/.driftrec-complete" ]; then
  exit 0
fi

echo "==> installing (first run takes a minute)"
"$PY" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
# CPU torch first where a CPU wheel of this version is available (it is on our CI machines);
# the project itself only asks for torch>=2.3, so GPU users keep their CUDA build.
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  "$PY" -m pip install --quiet "torch==${DRIFTREC_TORCH_VERSION:-2.13.0}" \
    || echo "note: torch==${DRIFTREC_TORCH_VERSION:-2.13.0} not available; pip will pick a torch>=2.3"
fi
"$PY" -m pip install --quiet -e ".[test]"
# The oldest gymnasium releases the project supports (see pyproject.toml), for the tests that
# check the environments under them in a subprocess (pure Python; nothing else is installed).
for version in 1.1.1 1.2.2 1.3.0; do
  target="$VENV/compat/gymnasium-$version"
  if [ ! -d "$target/gymnasium" ]; then
    "$PY" -m pip install --quiet --no-deps --target "$target" "gymnasium==$version"
  fi
done
# What `pip install -e ".[rl]"` adds to this environment (RLlib's own dependencies, and the
# gymnasium that ray[rllib] pins, older than the one the rest of the suite runs under), installed
# beside it: tests/rl/test_rllib.py runs RLlib in a subprocess with this folder first on
# PYTHONPATH, so the suite checks what users of the extra get without downgrading the main venv.
# pip resolves the list itself (a dry run against this venv), so it follows pyproject.toml.
if [ ! -f "$rllib_target/.driftrec-complete" ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "==> installing the [rl] extra's additions into $rllib_target"
  report="$(mktemp)"
  "$PY" -m pip install --quiet --dry-run --report "$report" -e ".[rl]"
  mapfile -t extra < <("$PY" - "$report" <<'PYEOF'
import json, sys
for item in json.load(open(sys.argv[1]))["install"]:
    meta = item["metadata"]
    if meta["name"] != "driftrec":
        print(f"{meta['name']}=={meta['version']}")
PYEOF
)
  rm -f "$report"
  rm -rf "$rllib_target.tmp"
  mkdir -p "$rllib_target.tmp"
  if [ "${#extra[@]}" -gt 0 ]; then
    "$PY" -m pip install --quiet --no-deps --target "$rllib_target.tmp" "${extra[@]}"
  fi
  printf '%s\n' "${extra[@]}" > "$rllib_target.tmp/.driftrec-complete"
  rm -rf "$rllib_target"
  mv "$rllib_target.tmp" "$rllib_target"
fi
echo "$want" > "$stamp"
echo "==> ready: $VENV"
