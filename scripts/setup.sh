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
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
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
echo "$want" > "$stamp"
echo "==> ready: $VENV"
