#!/usr/bin/env bash
# The GPU benchmark on a lent CUDA machine (issue 8, acceptance h100_*), in two back-to-back device calls, since
# one call carries at most 64 MiB (prepare both folders here first with scripts/device-wheelhouse.sh):
#   call 1, carry [".wheelhouse/a"]:  bash scripts/device-bench.sh install-a   (scipy, scikit-learn -> .devsite)
#   call 2, carry [".wheelhouse/b"]:  bash scripts/device-bench.sh run         (the rest, then the benchmark)
# The machine keeps ignored outputs between calls while it stays warm (call 2 right after call 1). `run` then
# benchmarks confluent-kafka and kafka-python with one fetch process, confluent-kafka with WORKERS (one per
# partition group), device cuda, then again with micro-batches of 1024, then benchmarks/loop_ceiling.py and
# benchmarks/learner_overhead.py (the learner's host cost per step against a bare loop), and
# copies the figures (benchmarks/results.jsonl, RESULTS.md, JSON) to $OUT after each step. Rehearsed on a CPU
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
    # each step under its own limit, the figures copied to $OUT after each: a step that overruns costs only itself
    step() {
        local name=$1 limit=$2; shift 2
        echo "== $name (limit ${limit}s): $*"
        timeout "$limit" "$@" || echo "== $name: exit $?"
        cp benchmarks/results.jsonl benchmarks/RESULTS.md "$out"/ 2>/dev/null || true
    }
    common=(--records "$RECORDS" --models mlp --replays reservoir --repeats "${REPEATS:-3}" --device "${DEVICE:-cuda}"
            --river-records "${RIVER_RECORDS:-20000}")
    step one-fetcher 190 python3 -m lifelong bench "${common[@]}" --clients confluent,kafka-python \
        --json "$out/cuda-one-fetcher.json"
    step parallel-fetch 140 python3 -m lifelong bench "${common[@]}" --clients confluent \
        --partitions "$PARTITIONS" --fetch-workers "$WORKERS" --json "$out/cuda-parallel-fetch.json"
    # a GPU step costs about the same at 256 rows as at 1024 (launch-bound): fewer, larger steps per event
    step parallel-fetch-mb1024 110 python3 -m lifelong bench "${common[@]}" --clients confluent --repeats 1 \
        --partitions "$PARTITIONS" --fetch-workers "$WORKERS" --micro-batch 1024 --batch-size 1024 \
        --replay-batch-size 1024 --json "$out/cuda-parallel-fetch-mb1024.json"
    # what the loop alone reaches (learning at no cost) beside the same daemon with its GPU learner
    step loop-ceiling 90 python3 benchmarks/loop_ceiling.py --records "$RECORDS" --repeats 1 --clients confluent \
        --partitions "$PARTITIONS" --fetch-workers "$WORKERS" --device "${DEVICE:-cuda}"
    # the learner's host cost per step beyond a bare training loop (kernel launches, syncs): no broker, seconds
    step learner-overhead 45 python3 benchmarks/learner_overhead.py --device "${DEVICE:-cuda}"
    ;;
*) echo "usage: $0 install-a | run" >&2; exit 2 ;;
esac
