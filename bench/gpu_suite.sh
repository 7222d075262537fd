#!/usr/bin/env bash
# The GPU suite in one command, for an H100/H200 with no internet (about 10 minutes at most):
#   1. install the Python packages the machine lacks from bench/wheelhouse/ (bench/make_wheelhouse.sh
#      fills it on a machine with internet; carry it along), into $WARPSCHED_SITE, put first on PYTHONPATH;
#   2. pip install -e . offline (no index, no dependencies, no build isolation), unless this checkout is
#      already what `import warpsched.scheduler` finds; without the toolchain wheels, the image's own
#      CUDA toolkit through WARPSCHED_CUDA_HOME;
#   3. the GPU tests: python3 -m pytest -q -m gpu;
#   4. bench/calibrate.py (under 3 minutes): the chip numbers measured beside the machine model's, in
#      bench/results/<device>-<date>-calibration.json; then bench/gpu_bench.py in the time left: results in bench/results/<device>-<date>.json and a PNG per
#      family, a short table last, and the exact kernel.cu of every kernel it timed under
#      bench/results/<device>-<date>-kernels/ (with rows.json: which row ran which kernel);
#   5. predicted vs measured for every row timed: bench/backtest.py --run <device>-<date> (CPU; the
#      builds are cached from step 4) writes bench/results/backtest-<device>-<date>.json and .md.
# Where $OUT is set (the device tool's output folder) the results, the PNGs and the logs are copied there.
# On a machine without a GPU each GPU step prints "skipped: no GPU" and the script exits 0.
#
#   bash bench/gpu_suite.sh [--quick] [more bench/gpu_bench.py options]
#
# Environment: PYTHON (default python3), WARPSCHED_SUITE_SECONDS (the whole suite's budget, default 560),
# WARPSCHED_SITE (default /tmp/warpsched-site).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
ROOT=$PWD
T0=$(date +%s)
TOTAL=${WARPSCHED_SUITE_SECONDS:-560}
PY=${PYTHON:-python3}
WHEELS=$ROOT/bench/wheelhouse
SITE=${WARPSCHED_SITE:-/tmp/warpsched-site}
TMP=$(mktemp -d /tmp/gpu_suite.XXXXXX)
export PYTHONUNBUFFERED=1
export MPLBACKEND=Agg

log() { printf '[gpu_suite %3ds] %s\n' $(( $(date +%s) - T0 )) "$*"; }
has() { "$PY" -c "import $1" >/dev/null 2>&1; }

main() {
    log "repository $ROOT; python $("$PY" -c 'import sys; print(sys.executable, sys.version.split()[0])' 2>&1)"

    # 1. packages the machine lacks, from the carried wheels ------------------------------------------
    local want=() missing=() files=() w f
    has ortools || want+=(ortools)
    if ! has ortools && ! "$PY" -c "import google.protobuf as p, sys; sys.exit(p.__version__.split('.')[:2] != ['6', '33'])" >/dev/null 2>&1; then
        want+=(protobuf)  # ortools 9.15 needs protobuf 6.33.x
    fi
    has immutabledict || want+=(immutabledict)
    has cutlass_library || want+=(nvidia_cutlass)
    has networkx || want+=(networkx)
    has yaml || want+=(pyyaml)
    has cuda.bindings.driver || want+=(cuda_bindings)
    has matplotlib || want+=(matplotlib)
    if [ ${#want[@]} -eq 0 ]; then
        log "1/4 packages: all present"
    else
        for w in "${want[@]}"; do
            f=$(ls "$WHEELS" 2>/dev/null | grep -i "^${w}-.*\.whl$" | head -n 1)
            if [ -n "$f" ]; then files+=("$WHEELS/$f"); else missing+=("$w"); fi
        done
        if [ ${#files[@]} -gt 0 ]; then
            log "1/4 packages: installing ${files[*]##*/} into $SITE"
            if "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "${files[@]}"; then
                export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
            else
                log "1/4 packages: pip install from $WHEELS failed"
            fi
        fi
        if [ ${#missing[@]} -gt 0 ]; then
            log "1/4 packages: missing ${missing[*]} and no wheel for them in $WHEELS (run bench/make_wheelhouse.sh where pip can download, and carry bench/wheelhouse)"
        fi
    fi

    # 2. warpsched itself, editable and offline -------------------------------------------------------
    if (cd /tmp && "$PY" -c "import os, sys, warpsched.scheduler as s; sys.exit(not os.path.realpath(s.__file__).startswith(os.path.realpath(sys.argv[1]) + os.sep))" "$ROOT") >/dev/null 2>&1; then
        log "2/4 warpsched: this checkout is installed already"
    elif "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e "$ROOT" >"$TMP/pip_install.log" 2>&1; then
        log "2/4 warpsched: pip install -e . done (offline)"
    else
        log "2/4 warpsched: pip install -e . failed ($(tail -n 1 "$TMP/pip_install.log")); using PYTHONPATH=$ROOT instead"
        export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
    fi
    if ! (cd /tmp && "$PY" -c "import warpsched.scheduler, warpsched.models, warpsched.kernels, ortools") >"$TMP/import.log" 2>&1; then
        log "2/4 warpsched: import failed: $(tail -n 1 "$TMP/import.log")"
    fi
    # the CUDA toolchain: the pinned wheels when installed (pip install warpsched brings them), else the
    # image's own toolkit (installed above without dependencies; the image's nvcc is CUDA 13.0)
    if [ -z "${WARPSCHED_CUDA_HOME:-}" ] && ! (cd /tmp && "$PY" -c "from warpsched.kernels.toolchain import find_toolchain; find_toolchain()") >/dev/null 2>&1; then
        local nvcc_path
        nvcc_path=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)
        if [ -n "$nvcc_path" ]; then
            export WARPSCHED_CUDA_HOME=$(dirname "$(dirname "$(readlink -f "$nvcc_path")")")
            log "2/4 toolchain: no toolchain wheels; WARPSCHED_CUDA_HOME=$WARPSCHED_CUDA_HOME ($("$nvcc_path" --version | tail -n 1))"
        else
            log "2/4 toolchain: neither the toolchain wheels nor an nvcc; builds will fail"
        fi
    fi

    # GPU present? --------------------------------------------------------------------------------------
    local gpu
    gpu=$("$PY" -c "
import torch
if not torch.cuda.is_available():
    raise SystemExit('no CUDA GPU is visible on this machine')
print(torch.cuda.get_device_name(0), 'sm_%d%d' % torch.cuda.get_device_capability(0), 'torch', torch.__version__)
" 2>&1)
    local has_gpu=$?
    if [ $has_gpu -ne 0 ]; then
        log "3/4 GPU tests: skipped: no GPU (${gpu##*$'\n'})"
        log "4/4 GPU benchmark: skipped: no GPU"
        "$PY" bench/gpu_bench.py "$@"
        log "done: skipped: no GPU; exit 0"
        return 0
    fi
    log "GPU: $gpu"
    nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,utilization.gpu,memory.used --format=csv 2>/dev/null || true

    # 3. the GPU tests ------------------------------------------------------------------------------
    local left=$(( TOTAL - ($(date +%s) - T0) ))
    local test_limit=$(( left / 3 ))
    # Each test in a worker process of its own with a per-test limit where pytest-xdist and pytest-timeout
    # are there (the device image has both): a kernel that hangs fails its test, not the whole step, and the
    # builds run in parallel.
    local par=()
    if "$PY" -c "import xdist, pytest_timeout" >/dev/null 2>&1; then
        par=(-n 8 --timeout 150 --timeout-method thread)
    fi
    log "3/4 GPU tests: python3 -m pytest -q -m gpu ${par[*]} (limit ${test_limit}s)"
    timeout -s INT -k 15 "$test_limit" "$PY" -m pytest -q -m gpu --tb=short -p no:cacheprovider "${par[@]}" 2>&1 | tee "$TMP/gpu_tests.log"
    local test_rc=${PIPESTATUS[0]}
    local summary
    summary=$(grep -E "(passed|failed|skipped|error|no tests ran)" "$TMP/gpu_tests.log" | tail -n 1 | sed 's/=//g; s/^ *//; s/ *$//')
    [ $test_rc -eq 124 ] && summary="stopped after ${test_limit}s: $summary"
    log "3/4 GPU tests: rc $test_rc: $summary"

    # 4. calibration, then the benchmark ------------------------------------------------------------
    touch "$TMP/stamp"
    log "4/4 calibration: bench/calibrate.py (limit 180s)"
    timeout -s INT -k 10 180 "$PY" bench/calibrate.py || log "4/4 calibration: failed (rc $?)"
    left=$(( TOTAL - ($(date +%s) - T0) - 25 ))
    [ $left -lt 60 ] && left=60
    log "4/4 GPU benchmark: bench/gpu_bench.py --budget-s $left $*"
    timeout -s INT -k 20 $(( left + 45 )) "$PY" bench/gpu_bench.py --budget-s "$left" --gpu-tests "$summary (rc $test_rc)" "$@"
    local bench_rc=$?
    log "4/4 GPU benchmark: rc $bench_rc"

    # 5. predicted vs measured ---------------------------------------------------------------------
    local kernels run
    kernels=$(find "$ROOT/bench/results" -maxdepth 1 -type d -name '*-kernels' -newer "$TMP/stamp" | head -n 1)
    if [ -n "$kernels" ] && [ -f "$kernels/rows.json" ]; then
        run=$(basename "$kernels" -kernels)
        log "5/5 prediction: bench/backtest.py --run $run"
        timeout 150 "$PY" bench/backtest.py --run "$run" || log "5/5 prediction: failed"
        if [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ]; then
            tar czf "$OUT/$run-kernels.tar.gz" -C "$ROOT/bench/results" "$run-kernels"
        fi
    else
        log "5/5 prediction: no kernels folder from this run"
    fi

    if [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ]; then
        find "$ROOT/bench/results" -maxdepth 1 -type f -newer "$TMP/stamp" \( -name '*.json' -o -name '*.png' -o -name '*.md' \) -exec cp {} "$OUT"/ \;
        cp "$TMP/gpu_tests.log" "$OUT/gpu_tests.log" 2>/dev/null
        log "copied $(ls "$OUT" | tr '\n' ' ')to \$OUT"
    fi
    # pytest: 5 = no GPU tests collected, not a failure
    if [ $test_rc -ne 0 ] && [ $test_rc -ne 5 ]; then
        log "done: GPU tests failed (rc $test_rc); benchmark rc $bench_rc"
        return 1
    fi
    log "done: benchmark rc $bench_rc"
    return $bench_rc
}

if [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ]; then
    main "$@" 2>&1 | tee "$OUT/gpu_suite.log"
    rc=${PIPESTATUS[0]}
else
    main "$@"
    rc=$?
fi
rm -rf "$TMP"
exit $rc
