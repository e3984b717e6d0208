#!/usr/bin/env bash
# The GPU benchmark on a lent CUDA machine (issue 8, acceptance h100_*), in two back-to-back device calls, since
# one call carries at most 64 MiB (prepare both folders here first with scripts/device-wheelhouse.sh):
#   call 1, carry [".wheelhouse/a"]:  bash scripts/device-bench.sh install-a   (scipy, scikit-learn -> .devsite)
#   call 2, carry [".wheelhouse/b"]:  bash scripts/device-bench.sh run         (the rest, then the benchmark)
# The machine keeps ignored outputs between calls while it stays warm (call 2 right after call 1). `run` then
# benchmarks confluent-kafka and kafka-python with one fetch process and with WORKERS (one per partition group),
# device cuda, and copies the figures (benchmarks/results.jsonl, RESULTS.md, JSON) to $OUT. Rehearsed on a CPU
# machine with DEVICE=cpu and wheels for its Python (PYTHON_VERSION=3.11 scripts/device-wheelhouse.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
SITE=$PWD/.devsite
pipi() { python3 -m pip install --quiet --no-index --no-deps --disable-pip-version-check "$@"; }  # every wheel is given
case "${1:-run}" in
install-a)
    pipi --target "$SITE" .wheelhouse/a/*.whl
    echo "installed into $SITE: $(ls "$SITE" | tr '\n' ' ')"
    ;;
run)
    RECORDS=${RECORDS:-300000} WORKERS=${WORKERS:-4} PARTITIONS=${PARTITIONS:-8}
    test -d "$SITE" || { echo "no $SITE: run 'install-a' in the call before, on the same warm machine" >&2; exit 2; }
    pipi --target "$SITE" .wheelhouse/b/*.whl
    export PYTHONPATH=$SITE:$PWD LIFELONG_CACHE=$PWD/.wheelhouse/b  # mnist.npz is there
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
    out=${OUT:-/tmp}
    common=(--records "$RECORDS" --models mlp --replays reservoir --repeats "${REPEATS:-3}" --device "${DEVICE:-cuda}"
            --river-records "${RIVER_RECORDS:-20000}"
            --clients confluent,kafka-python)
    python3 -m lifelong bench "${common[@]}" --json "$out/cuda-one-fetcher.json"
    python3 -m lifelong bench "${common[@]}" --partitions "$PARTITIONS" --fetch-workers "$WORKERS" \
        --json "$out/cuda-parallel-fetch.json"
    cp benchmarks/results.jsonl benchmarks/RESULTS.md "$out"/
    ;;
*) echo "usage: $0 install-a | run" >&2; exit 2 ;;
esac
