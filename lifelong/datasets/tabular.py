"""A user's own data: a CSV table (feature columns + one label column) or an ``.npz`` of arrays."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from lifelong.datasets.base import Dataset, from_arrays

_LABEL_NAMES = ("label", "y", "target", "class")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _label_index(header: list[str] | None, n_columns: int, label_column: str | int | None) -> int:
    if label_column is None:
        if header is not None:
            lowered = [h.strip().lower() for h in header]
            for name in _LABEL_NAMES:
                if name in lowered:
                    return lowered.index(name)
        return n_columns - 1
    if isinstance(label_column, int) or label_column.lstrip("-").isdigit():
        index = int(label_column)
        if not -n_columns <= index < n_columns:
            raise ValueError(f"label_column {index} out of range for {n_columns} columns")
        return index % n_columns
    if header is None or label_column not in [h.strip() for h in header]:
        raise ValueError(f"label column {label_column!r} not in the CSV header {header}")
    return [h.strip() for h in header].index(label_column)


def load_csv(path: Path | str, *, label_column: str | int | None = None, test_fraction: float = 0.2,
             seed: int = 0, delimiter: str = ",") -> Dataset:
    """Load a CSV: a header is detected (a non-numeric field), features must be numeric, labels may be text.

    The label column is ``label_column`` (name or index), else a column named label/y/target/class, else the
    last one. The test split is a seeded random ``test_fraction`` of the rows.
    """
    path = Path(path).expanduser()
    text = path.read_text()
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows = [row for row in reader if row and any(cell.strip() for cell in row)]
    if not rows:
        raise ValueError(f"{path}: empty CSV")
    header = rows[0] if not all(_is_number(c) for c in rows[0]) else None
    body = rows[1:] if header is not None else rows
    n_columns = len(rows[0])
    if any(len(r) != n_columns for r in body):
        raise ValueError(f"{path}: rows have different numbers of columns")
    label_at = _label_index(header, n_columns, label_column)
    feature_at = [i for i in range(n_columns) if i != label_at]
    try:
        x = np.asarray([[r[i] for i in feature_at] for r in body], dtype=np.float32)
    except ValueError as exc:
        raise ValueError(f"{path}: non-numeric feature value ({exc})") from exc
    labels = [r[label_at].strip() for r in body]
    y = np.asarray([float(v) for v in labels]) if all(_is_number(v) for v in labels) else np.asarray(labels)
    names = tuple(header[i].strip() for i in feature_at) if header is not None else None
    return from_arrays(f"csv:{path.name}", x, y, test_fraction=test_fraction, seed=seed, feature_names=names)


def load_npz(path: Path | str, *, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """Load an ``.npz`` holding ``x_train, y_train, x_test, y_test`` or just ``x, y`` (split here, seeded).

    Integer pixel data (uint8) is scaled to [0, 1]; float data is taken as it is.
    """
    path = Path(path).expanduser()
    with np.load(path, allow_pickle=False) as data:
        keys = set(data.files)
        if {"x_train", "y_train", "x_test", "y_test"} <= keys:
            arrays = [data[k] for k in ("x_train", "y_train", "x_test", "y_test")]
        elif {"x", "y"} <= keys:
            arrays = [data["x"], data["y"], None, None]
        else:
            raise ValueError(f"{path}: needs arrays x,y or x_train,y_train,x_test,y_test; has {sorted(keys)}")

    def scaled(x: np.ndarray | None) -> np.ndarray | None:
        if x is None:
            return None
        return x.astype(np.float32) / np.float32(255.0) if x.dtype == np.uint8 else x.astype(np.float32)

    x_train, y_train, x_test, y_test = arrays
    return from_arrays(f"npz:{path.name}", scaled(x_train), y_train, test_fraction=test_fraction, seed=seed,
                       x_test=scaled(x_test), y_test=y_test)
