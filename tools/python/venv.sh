#!/usr/bin/env bash
# Creates (or updates) a project-local Python virtualenv from a pinned requirements file and prints
# its python path. Usage: tools/python/venv.sh NAME   → .venv/NAME from tools/python/NAME.txt
# Idempotent and quiet when nothing changed: a stamp holds the hash of the requirements file.
set -euo pipefail
name=${1:?usage: venv.sh NAME (reads tools/python/NAME.txt)}
root=$(cd "$(dirname "$0")/../.." && pwd)
req="$root/tools/python/$name.txt"
venv="$root/.venv/$name"
[ -f "$req" ] || { echo "venv.sh: no $req" >&2; exit 2; }
python=${PYTHON:-python3}
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ]; then
  echo "venv.sh: creating $venv (first run installs from PyPI and can take a few minutes)" >&2
  "$python" -m venv "$venv" >&2
fi
if [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$want" ]; then
  "$venv/bin/python" -m pip install --disable-pip-version-check -q --upgrade pip >&2
  "$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off -r "$req" >&2
  echo "$want" > "$venv/.stamp"
fi
echo "$venv/bin/python"
