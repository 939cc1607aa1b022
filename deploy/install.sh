#!/bin/sh
# Install annota from a source tree into a fresh virtual environment.
#
# The image's build stage runs this, and tests/deploy runs it too (as an unprivileged user), so the
# install steps the Dockerfile depends on are checked without a container engine.
#
# usage: install.sh VENV SOURCE_DIR [EXTRAS]    (EXTRAS: comma-separated, e.g. "test")
set -eu
venv=$1
source=$2
extras=${3:-}
python=${PYTHON:-python3}

"$python" -m venv "$venv"
if [ -n "$extras" ]; then
    spec="$source[$extras]"
else
    spec="$source"
fi
# a regular (not editable) install: the venv is all the runtime stage copies
"$venv/bin/python" -m pip install --no-input --disable-pip-version-check "$spec"
"$venv/bin/annota" --version
