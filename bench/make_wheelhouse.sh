#!/usr/bin/env bash
# Download, on a machine where pip reaches PyPI, the wheels that the GPU machine's image lacks, into
# bench/wheelhouse/ (git-ignored), for bench/gpu_suite.sh to install there with no internet.
#
#   bash bench/make_wheelhouse.sh [--full] [DEST]
#
# Default set (about 37 MB; the device tool carries at most 64 MiB with the working tree): ortools and
# what it needs beyond that image (immutabledict, protobuf 6.33), and nvidia-cutlass (the CuTe headers).
# The image has torch, numpy, networkx, PyYAML, matplotlib, cuda-bindings, nvcc and cuobjdump
# (/work/.library/device/KINDS.md). --full adds networkx, PyYAML and cuda-bindings (with
# cuda-pathfinder) for an image without them; watch the size it prints.
# The wheels are for CPython $WHEEL_PYTHON (default 3.12, the image's python3) on x86-64 Linux.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

FULL=0
if [ "${1:-}" = "--full" ]; then FULL=1; shift; fi
DEST=${1:-bench/wheelhouse}
PYV=${WHEEL_PYTHON:-3.12}
PY=${PYTHON:-python3}

# The versions this repository is tested with (pyproject.toml's ranges; override with VAR=version).
PKGS=(
    "ortools==${ORTOOLS_VERSION:-9.15.6755}"
    "immutabledict==${IMMUTABLEDICT_VERSION:-4.3.1}"
    "protobuf==${PROTOBUF_VERSION:-6.33.6}"
    "nvidia-cutlass==${CUTLASS_VERSION:-4.2.0.0}"
)
if [ $FULL -eq 1 ]; then
    PKGS+=("networkx==3.6.1" "PyYAML==6.0.3" "cuda-bindings==13.4.4" "cuda-pathfinder==1.9.0")
fi

mkdir -p "$DEST"
rm -f "$DEST"/*.whl  # one version of each: two would stop the install there
"$PY" -m pip download --no-deps --only-binary=:all: --python-version "$PYV" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
    -d "$DEST" "${PKGS[@]}"

bytes=$(du -cb "$DEST"/*.whl | tail -n 1 | cut -f 1)
echo "wheelhouse $DEST: $(ls "$DEST" | wc -l) wheels, $(( bytes / 1048576 )) MiB"
ls -1 "$DEST"
if [ "$bytes" -gt $(( 56 * 1048576 )) ]; then
    echo "warning: over 56 MiB; with the working tree it may pass the device tool's 64 MiB carry limit" >&2
fi
