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
# The stamp covers the file and the files it includes with `-r other.txt`, so a change to an included
# pin (client.txt inside frameworks.txt) refreshes the venv too.
includes=$(sed -n 's/^-r[[:space:]]*//p' "$req" | while read -r f; do echo "$root/tools/python/$f"; done)
# shellcheck disable=SC2086
want=$(cat "$req" $includes | sha256sum | cut -d' ' -f1)
# Several test projects (run in parallel by Nx) may ask for the same venv at once on a fresh clone:
# one creates it, the others wait for it.
mkdir -p "$root/.venv"
exec 9>"$root/.venv/.$name.lock"
flock 9
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
