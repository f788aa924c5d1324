#!/usr/bin/env bash
# Build the standalone app (dist/visage/, PyInstaller onedir, from build.spec) and run its
# self-test from the bundle. Usage: scripts/build_app.sh  (or `make app`). VENV=... to override.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-.venv}"
[[ "$VENV" = /* ]] || VENV="$ROOT/$VENV"
PY="$VENV/bin/python"
cd "$ROOT"

if [[ ! -x "$PY" ]]; then
    echo "no virtual environment at $VENV: run \`make setup\` first" >&2
    exit 1
fi
if ! "$PY" -c "import PyInstaller" 2>/dev/null; then
    echo "installing PyInstaller into $VENV (the [package] extra)"
    "$PY" -m pip install -q -e ".[package]"
fi

started=$(date +%s)
"$PY" -m PyInstaller build.spec --noconfirm --clean --log-level WARN
echo "built dist/visage/ in $(( $(date +%s) - started )) s: $(du -sh dist/visage | cut -f1)"

# From another working directory: the bundle must not depend on the source tree.
cd "$(mktemp -d)"
"$ROOT/dist/visage/visage" --self-test
