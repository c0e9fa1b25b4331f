#!/usr/bin/env bash
# CI: the package installed WITHOUT extras (`pip install .`, what users get) must run its main commands on the
# photo it ships. Catches imports of test-only or serve-only packages (scikit-image, gradio...) on user paths.
# Throwaway venv in /tmp (PLAIN_VENV to change it), removed at the end; fails on the first command that fails.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
VENV="${PLAIN_VENV:-/tmp/agegender-plain}"
PYTHON="${PYTHON:-python3}"
export NO_ALBUMENTATIONS_UPDATE=1 HF_HUB_OFFLINE=1 MPLBACKEND=Agg
start=$SECONDS

rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
WORK="$(mktemp -d)"
trap 'rm -rf "$VENV" "$WORK"' EXIT
"$VENV/bin/python" -m pip install -q torch==2.14.1 torchvision==0.29.1
# Build from a copy: pip builds in-tree and would leave build/ and *.egg-info in the checkout.
mkdir "$WORK/src"
tar -C "$REPO" --exclude=./.git --exclude=./.venv --exclude=./runs --exclude=./build --exclude='*.egg-info' -cf - . |
    tar -C "$WORK/src" -xf -
"$VENV/bin/python" -m pip install -q "$WORK/src"
echo "plain install: $((SECONDS - start)) s"

# From a scratch folder, so the installed package runs, not the source tree.
cd "$WORK"
AG="$VENV/bin/agegender"
run() {
    echo "+ agegender $*"
    "$AG" "$@"
}
run --help >/dev/null
run predict "$REPO/agegender/serving/examples/astronaut.jpg"
if [ -d "$REPO/../shared/data/wild" ]; then
    # exit 1 means "some photo had no usable face" (the table says which): a result, not a failure
    run predict -q "$REPO/../shared/data/wild" || [ $? -eq 1 ]
fi
# without the ray extra, --engine ray is a one-line user error (exit 2) that says how to install it
if run predict --engine ray "$REPO/agegender/serving/examples/astronaut.jpg" --output "$WORK/ray_out" 2>"$WORK/ray.err"; then
    echo "--engine ray ran without the ray extra" >&2
    exit 1
elif [ $? -ne 2 ] || ! grep -q "pip install 'agegender\[ray\]'" "$WORK/ray.err"; then
    cat "$WORK/ray.err" >&2
    exit 1
fi
run benchmark speed --backends torch,onnx --batch-size 2 --repeats 1 --threads 1 --output "$WORK/speed.json"
echo "plain-install check passed in $((SECONDS - start)) s"
