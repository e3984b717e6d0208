"""Image transforms that define the domain-incremental tasks: pixel permutations and rotations (numpy only)."""

from __future__ import annotations

import numpy as np


def permute_features(x: np.ndarray, permutation: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Shuffle every sample's flattened features by one fixed permutation, keeping the sample shape.

    ``out.reshape(n, -1)[:, i] == x.reshape(n, -1)[:, permutation[i]]`` (the Permuted MNIST of
    Goodfellow et al. 2013). ``rows`` selects samples in the same gather (one copy instead of two).

    >>> permute_features(np.array([[10, 20, 30]]), np.array([2, 0, 1])).tolist()
    [[30, 10, 20]]
    """
    flat = x.reshape(len(x), -1)
    if permutation.shape != (flat.shape[1],):
        raise ValueError(f"permutation of {permutation.shape} for {flat.shape[1]} features")
    if rows is None:
        return flat[:, permutation].reshape(x.shape)
    return flat[rows[:, None], permutation[None, :]].reshape(len(rows), *x.shape[1:])


def rotation_sampling(height: int, width: int, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear sampling plan for rotating an ``(height, width)`` image by ``degrees`` (counter-clockwise).

    Returns ``(indices, weights)`` of shape ``(height * width, 4)``: output pixel ``p`` is
    ``sum_k weights[p, k] * flat_image[indices[p, k]]``. Source points outside the image get weight 0
    (the background is black, as MNIST's is).
    """
    theta = np.deg2rad(degrees)
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    rows, cols = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64),
                             indexing="ij")
    # Inverse mapping: each output pixel looks up where it came from (rotate by -theta about the centre).
    # Image rows grow downwards, so a counter-clockwise turn on screen uses (x, -y) coordinates.
    dx, dy = cols - cx, cy - rows
    src_x = np.cos(theta) * dx + np.sin(theta) * dy + cx
    src_y = cy - (-np.sin(theta) * dx + np.cos(theta) * dy)
    x0, y0 = np.floor(src_x), np.floor(src_y)
    fx, fy = src_x - x0, src_y - y0
    indices = np.zeros((height * width, 4), dtype=np.int64)
    weights = np.zeros((height * width, 4), dtype=np.float32)
    corners = ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)), (1, 0, (1 - fx) * fy), (1, 1, fx * fy))
    for k, (oy, ox, w) in enumerate(corners):
        yy, xx = (y0 + oy).astype(np.int64), (x0 + ox).astype(np.int64)
        inside = (yy >= 0) & (yy < height) & (xx >= 0) & (xx < width)
        indices[:, k] = np.where(inside, yy * width + xx, 0).ravel()
        weights[:, k] = np.where(inside, w, 0.0).ravel()
    # Snap near-integer weights so a rotation by a multiple of 90 degrees moves pixels exactly.
    weights[np.abs(weights) < 1e-6] = 0.0
    weights[np.abs(weights - 1) < 1e-6] = 1.0
    return indices, weights


def rotate_images(x: np.ndarray, degrees: float, chunk: int = 2048) -> np.ndarray:
    """Rotate a batch of ``(n, H, W)`` images by ``degrees`` counter-clockwise with bilinear sampling.

    >>> img = np.zeros((1, 3, 3), np.float32); img[0, 0, 2] = 1.0   # top-right corner
    >>> rotate_images(img, 90)[0].tolist()                            # a quarter turn left: top-left
    [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    """
    if x.ndim != 3:
        raise ValueError(f"rotation needs images of shape (n, H, W), got {x.shape}")
    n, height, width = x.shape
    if degrees % 360 == 0:
        return x.astype(np.float32, copy=True)
    indices, weights = rotation_sampling(height, width, degrees)
    flat = x.reshape(n, height * width).astype(np.float32, copy=False)
    out = np.empty((n, height * width), dtype=np.float32)
    for start in range(0, n, chunk):  # bounded temporary memory: chunk x pixels x 4 floats
        block = flat[start:start + chunk]
        out[start:start + chunk] = np.einsum("npk,pk->np", block[:, indices], weights, optimize=True)
    return out.reshape(n, height, width)
