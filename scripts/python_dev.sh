#!/usr/bin/env bash
# Makes Debian's /usr/bin/python3 import kiln from this checkout, as
# `pip install --user -e` would: a kiln-dev.pth in the user's site-packages
# names python/, whose package uses build/libkiln.so and build/kiln (or
# $KILN_LIB, $KILN_CLI).  No root needed; remove the .pth to undo.  For an
# installed copy instead: cmake --install build --prefix /usr/local.
# Called by scripts/setup.sh (the README's set-up).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
site=$("$PY" -c 'import site; print(site.getusersitepackages() if site.ENABLE_USER_SITE else "")')
if [ -z "$site" ]; then
  echo "python: the user site directory is disabled; use PYTHONPATH=$root/python"
  exit 0
fi
mkdir -p "$site"
printf '%s\n' "$root/python" > "$site/kiln-dev.pth"
echo "python: $PY imports kiln from $root/python ($site/kiln-dev.pth)"
