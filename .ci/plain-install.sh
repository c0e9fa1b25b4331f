#!/usr/bin/env bash
# CI: the LEAN install. The package WITHOUT extras (`pip install .`: numpy, pillow, OpenCV, ONNX Runtime, ...;
# no torch, which is NOT installed first) must predict on the photo it ships and on ../shared/data/wild, and run
# the ONNX speed benchmark. Catches any import of the training stack (torch, albumentations, ...), test-only or
# serve-only packages on the runtime path, and checks that commands needing an extra say which.
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
# Build from a copy: pip builds in-tree and would leave build/ and *.egg-info in the checkout.
mkdir "$WORK/src"
tar -C "$REPO" --exclude=./.git --exclude=./.venv --exclude=./runs --exclude=./data/aligned --exclude=./build --exclude='*.egg-info' -cf - . |
    tar -C "$WORK/src" -xf -
"$VENV/bin/python" -m pip install -q "$WORK/src"
echo "plain (lean) install: $((SECONDS - start)) s, $(du -sm "$VENV" | cut -f1) MB"
if "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    echo "error: the base install pulled in torch; it must stay in the 'train' extra" >&2
    exit 1
fi

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
run benchmark speed --backends onnx --batch-size 2 --repeats 1 --threads 1 --output "$WORK/speed.json"
# A command that needs the training stack names the extra (exit 2, one error line), it does not crash.
out="$("$AG" predict --backend torch "$REPO/agegender/serving/examples/astronaut.jpg" 2>&1)" && status=0 || status=$?
if [ "$status" -ne 2 ] || ! grep -q "agegender\[train\]" <<<"$out"; then
    echo "error: --backend torch without torch should name the 'train' extra (exit 2), got $status: $out" >&2
    exit 1
fi
# without the ray extra, --engine ray is a one-line user error (exit 2) that says how to install it
if run predict --engine ray "$REPO/agegender/serving/examples/astronaut.jpg" --output "$WORK/ray_out" 2>"$WORK/ray.err"; then
    echo "--engine ray ran without the ray extra" >&2
    exit 1
elif [ $? -ne 2 ] || ! grep -q "pip install 'agegender\[ray\]'" "$WORK/ray.err"; then
    cat "$WORK/ray.err" >&2
    exit 1
fi
echo "plain-install check passed in $((SECONDS - start)) s"
