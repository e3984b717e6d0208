"""Record codecs: bytes on the wire <-> (features, label), with validation that never raises out of a poll.

Three formats:

- ``f32`` (the fast path): a small versioned header, then raw little-endian float32 features decoded zero-copy
  with ``numpy.frombuffer``. Header (little-endian, 8 + 4*ndim bytes, so the payload stays 4-byte aligned)::

      magic b"LF" | version u8 (=1) | ndim u8 | label i32 | shape u32 * ndim | float32 * prod(shape)

- ``json``: ``{"x": [...], "y": label, "id"?: ..., "ts"?: ...}`` parsed with orjson. ``x`` may be nested
  (an image as lists of rows). An integral float label (``3.0``) is accepted, anything else that is not an
  integer is a ``bad_label_type``. ``NaN``/``Infinity`` (which Python's ``json.dumps`` writes) are reported as
  ``non_finite``, not as invalid JSON.
- ``image``: PNG/JPEG bytes decoded with ``torchvision.io``, label in a Kafka header (``label`` by default).
  This is the one place where the stream layer touches torch: torchvision is imported lazily, inside the
  codec, so ``lifelong.stream`` stays importable (and fast to import) without it. (Pillow, which would keep
  torch out, decoded a 28 x 28 PNG in 37 us against torchvision's 13, and a 224 x 224 JPEG in 365 against 178.)
  The image's size is read from its header before anything is decoded: a small record that inflates to
  gigabytes (a decompression bomb) is a bad record, not a fetch process killed for its memory. torchvision 0.29
  deprecates its image codecs for TorchCodec; pyproject pins torchvision < 0.30 until that move.

``decode_records`` turns one poll into a :class:`DecodedBatch`: good rows stacked into arrays, bad ones kept
with a short machine-readable reason (the ``reason`` header of the dead-letter record and the label of
``lifelong_dead_letter_total``).

Example::

    >>> import numpy as np
    >>> from lifelong.stream.records import RawRecord
    >>> codec = get_codec("f32")
    >>> value, headers = codec.encode(np.arange(4, dtype=np.float32), 3)
    >>> batch = decode_records([RawRecord("t", 0, 7, None, value)], codec, num_features=4, max_classes=10)
    >>> batch.x.shape, batch.y.tolist(), batch.next_offsets
    ((1, 4), [3], {('t', 0): 8})
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import numpy as np
import orjson

from lifelong.stream.records import BadRecord, DecodedBatch, RawRecord

__all__ = [
    "Codec",
    "DecodeError",
    "F32Codec",
    "ImageCodec",
    "JsonCodec",
    "REASONS",
    "decode_records",
    "get_codec",
]

#: Every reason a record can be rejected for (the ``reason`` header on the dead-letter topic).
REASONS = (
    "empty_value",  # no value, or zero bytes
    "invalid_json",  # not parseable as JSON
    "not_an_object",  # JSON, but not {"x": ..., "y": ...}
    "missing_features",  # no "x"
    "missing_label",  # no "y" / no label header
    "bad_feature_type",  # features that are not numbers
    "bad_label_type",  # a label that is not an integer
    "label_out_of_range",  # label < 0 or >= max_classes
    "wrong_feature_count",  # number of features differs from the expected one
    "wrong_shape",  # same count but another shape, ragged nesting, or a scalar
    "non_finite",  # NaN or +/-Inf among the features
    "bad_magic",  # f32 value without the b"LF" magic
    "bad_header_version",  # f32 header version this code does not know
    "truncated",  # f32 value shorter than its header says
    "invalid_image",  # not a PNG or JPEG that torchvision can decode, or one above the codec's pixel limit
)


class DecodeError(ValueError):
    """A record that cannot be used; ``reason`` is one of :data:`REASONS`, ``detail`` is for humans."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


def _check_label(value: Any) -> int:
    """An integer label from a JSON value; integral floats (``3.0``) pass, bools and strings do not."""
    if isinstance(value, bool):
        raise DecodeError("bad_label_type", "boolean label")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    raise DecodeError("bad_label_type", f"label of type {type(value).__name__}")


class Codec:
    """Base class: ``encode`` for producers (feed, tests), ``decode`` for the consumer side."""

    name: ClassVar[str] = ""

    def encode(self, x: np.ndarray, y: int) -> tuple[bytes, list[tuple[str, bytes]]]:
        """Value bytes and Kafka headers for one sample."""
        raise NotImplementedError

    def decode(self, record: RawRecord) -> tuple[np.ndarray, int]:
        """Features (float32, the record's own shape) and label; raise DecodeError for a bad record.

        Checks the record on its own (format, label type, finiteness); what the consumer expects (feature
        count, shape, class range) is checked by :func:`decode_records`.
        """
        x, y = self.parse(record)
        if not np.isfinite(x).all():
            raise DecodeError("non_finite", "NaN or Inf among the features")
        return x, y

    def parse(self, record: RawRecord) -> tuple[np.ndarray, int]:
        """``decode`` without the finiteness check (decode_records does it once per batch, vectorised)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class F32Codec(Codec):
    """Versioned header + raw float32, the throughput path: ~1 us per 784-feature record in decode_records."""

    name = "f32"
    MAGIC: ClassVar[bytes] = b"LF"
    VERSION: ClassVar[int] = 1
    MAX_NDIM: ClassVar[int] = 8
    _HEAD = struct.Struct("<2sBBi")

    def encode(self, x: np.ndarray, y: int) -> tuple[bytes, list[tuple[str, bytes]]]:
        arr = np.asarray(x, dtype="<f4")
        if not 1 <= arr.ndim <= self.MAX_NDIM:
            raise ValueError(f"f32 encodes arrays of 1 to {self.MAX_NDIM} dimensions, got {arr.ndim}")
        head = self._HEAD.pack(self.MAGIC, self.VERSION, arr.ndim, int(y))
        shape = struct.pack(f"<{arr.ndim}I", *arr.shape)
        return head + shape + arr.tobytes(), []

    def parse(self, record: RawRecord) -> tuple[np.ndarray, int]:
        value = record.value
        if not value:
            raise DecodeError("empty_value")
        size = len(value)
        if size < 8:
            raise DecodeError("truncated", f"{size} bytes, less than the 8-byte header")
        magic, version, ndim, label = self._HEAD.unpack_from(value)
        if magic != self.MAGIC:
            raise DecodeError("bad_magic", f"magic {magic!r}")
        if version != self.VERSION:
            raise DecodeError("bad_header_version", f"version {version}, this code reads {self.VERSION}")
        start = 8 + 4 * ndim
        if ndim == 0 or ndim > self.MAX_NDIM:
            raise DecodeError("wrong_shape", f"ndim {ndim}")
        if size < start:
            raise DecodeError("truncated", "value ends inside the shape")
        shape = struct.unpack_from(f"<{ndim}I", value, 8)
        count = math.prod(shape)
        if size != start + 4 * count:
            raise DecodeError("truncated", f"{size - start} payload bytes for shape {shape}")
        x = np.frombuffer(value, dtype="<f4", count=count, offset=start)
        return (x if ndim == 1 else x.reshape(shape)), label


class JsonCodec(Codec):
    """``{"x": [...], "y": label}`` with orjson (~50 us for 784 floats): readable, ~50x slower than f32."""

    name = "json"

    def encode(self, x: np.ndarray, y: int, *, record_id: Any = None, ts: float | None = None,
               ) -> tuple[bytes, list[tuple[str, bytes]]]:
        doc: dict[str, Any] = {"x": np.ascontiguousarray(x, dtype=np.float32), "y": int(y)}
        if record_id is not None:
            doc["id"] = record_id
        if ts is not None:
            doc["ts"] = ts
        return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY), []

    def parse(self, record: RawRecord) -> tuple[np.ndarray, int]:
        value = record.value
        if not value:
            raise DecodeError("empty_value")
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            # orjson refuses NaN/Infinity/1e999; the standard module reads them, so such a record is reported
            # as what it is (non_finite) instead of invalid JSON. Only failing records pay for this.
            try:
                doc = json.loads(value)
            except (ValueError, UnicodeDecodeError):
                raise DecodeError("invalid_json", str(exc)) from None
        if not isinstance(doc, dict):
            raise DecodeError("not_an_object", f"JSON {type(doc).__name__}")
        if "x" not in doc:
            raise DecodeError("missing_features", 'no "x"')
        if "y" not in doc:
            raise DecodeError("missing_label", 'no "y"')
        label = _check_label(doc["y"])
        try:
            arr = np.array(doc["x"])
        except ValueError as exc:  # ragged nesting
            raise DecodeError("wrong_shape", str(exc)) from None
        if arr.dtype.kind not in "fiu":
            raise DecodeError("bad_feature_type", f"features of dtype {arr.dtype}")
        if arr.ndim == 0 or arr.size == 0:
            raise DecodeError("wrong_shape", f"features of shape {arr.shape}")
        return arr.astype(np.float32, copy=False), label


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_PALETTE = 3  # IHDR colour type of an indexed-colour image
# JPEG start-of-frame markers (they carry the size): C0-CF except DHT (C4), JPG (C8) and DAC (CC)
JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
JPEG_NO_LENGTH = frozenset(range(0xD0, 0xD8)) | {0x01}  # RSTn and TEM: markers without a length field


def image_header(value: bytes) -> tuple[str, int, int, bool]:
    """``(format, width, height, palette)`` from a PNG's IHDR or a JPEG's start-of-frame, without decoding.

    Written out rather than asked of Pillow: its lazy ``Image.open`` took 12 us a record, as long as
    torchvision's whole decode of a 28 x 28 PNG. Raises ``DecodeError("invalid_image")`` for anything else.
    """
    if value.startswith(PNG_SIGNATURE):
        if len(value) < 26 or value[12:16] != b"IHDR":
            raise DecodeError("invalid_image", "PNG without an IHDR chunk")
        width, height = struct.unpack_from(">II", value, 16)
        return "png", width, height, value[25] == PNG_PALETTE
    if value.startswith(b"\xff\xd8"):
        pos, end = 2, len(value)
        while pos + 4 <= end:
            if value[pos] != 0xFF:
                break
            marker = value[pos + 1]
            if marker == 0xFF:  # fill byte
                pos += 1
                continue
            if marker in JPEG_NO_LENGTH:
                pos += 2
                continue
            if marker in (0xD9, 0xDA):  # end of image, or the scan began: no frame header came first
                break
            if marker in JPEG_SOF:
                if pos + 9 > end:
                    break
                height, width = struct.unpack_from(">HH", value, pos + 5)
                return "jpeg", width, height, False
            pos += 2 + struct.unpack_from(">H", value, pos + 2)[0]
        raise DecodeError("invalid_image", "JPEG without a frame header")
    raise DecodeError("invalid_image", "neither PNG nor JPEG")


class ImageCodec(Codec):
    """PNG/JPEG bytes, label in a Kafka header; decoded to float32 (C, H, W) in [0, 1].

    Imports torchvision lazily (the stream layer otherwise never imports torch). An image of more than
    ``max_pixels`` pixels is refused from its header, before decoding: ``wrong_feature_count`` when the limit is
    the feature count the daemon expects (``codec.num_features``: no larger image could fit), else
    ``invalid_image``. Palette PNGs are expanded to RGB (torchvision would hand back the palette indices), 16-bit
    PNGs are scaled by 65535.
    """

    name = "image"
    DEFAULT_MAX_PIXELS = 1 << 24  # 4096 x 4096: 192 MiB as float32 RGB, when no feature count bounds it

    def __init__(self, label_header: str = "label", format: str = "png", jpeg_quality: int = 95,
                 max_pixels: int | None = None) -> None:
        if format not in {"png", "jpeg"}:
            raise ValueError(f"image format must be png or jpeg, not {format!r}")
        self.label_header = label_header
        self.format = format
        self.jpeg_quality = jpeg_quality
        self.features_bound = max_pixels is not None
        self.max_pixels = int(max_pixels) if max_pixels is not None else self.DEFAULT_MAX_PIXELS

    def encode(self, x: np.ndarray, y: int) -> tuple[bytes, list[tuple[str, bytes]]]:
        import torch
        from torchvision.io import encode_jpeg, encode_png

        arr = np.asarray(x)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[0] not in (1, 3):
            raise ValueError(f"image codec encodes (H, W) or (C, H, W) with C in 1, 3; got {np.shape(x)}")
        if arr.dtype != np.uint8:
            arr = np.clip(np.rint(arr.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
        tensor = torch.from_numpy(np.ascontiguousarray(arr))
        data = encode_png(tensor) if self.format == "png" else encode_jpeg(tensor, quality=self.jpeg_quality)
        return data.numpy().tobytes(), [(self.label_header, str(int(y)).encode())]

    def parse(self, record: RawRecord) -> tuple[np.ndarray, int]:
        if not record.value:
            raise DecodeError("empty_value")
        raw_label = record.header(self.label_header)
        if raw_label is None:
            raise DecodeError("missing_label", f"no {self.label_header!r} header")
        try:
            label = int(raw_label.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            raise DecodeError("bad_label_type", f"header {raw_label[:20]!r}") from None
        _, width, height, palette = image_header(record.value)
        if width * height > self.max_pixels:
            if self.features_bound:
                raise DecodeError("wrong_feature_count", f"{width} x {height} image, {self.max_pixels} features "
                                                         "expected")
            raise DecodeError("invalid_image", f"{width} x {height} image, above {self.max_pixels} pixels")

        import torch
        from torchvision.io import ImageReadMode, decode_image

        data = torch.from_numpy(np.frombuffer(record.value, dtype=np.uint8).copy())
        try:
            image = decode_image(data, mode=ImageReadMode.RGB if palette else ImageReadMode.UNCHANGED).numpy()
        except (RuntimeError, ValueError) as exc:
            raise DecodeError("invalid_image", str(exc)[:200]) from None
        scale = np.float32(65535.0 if image.dtype == np.uint16 else 255.0)
        return image.astype(np.float32) / scale, label


class _F32Fast:
    """The layout of the first valid f32 record of a poll: records of the same layout skip the parser, and their
    labels and features are read for all of them at once (:meth:`table`)."""

    __slots__ = ("head", "length", "shape_bytes", "start")

    def __init__(self) -> None:
        self.head: bytes | None = None
        self.shape_bytes = b""
        self.start = 0
        self.length = 0

    def learn(self, value: bytes) -> None:
        self.start = 8 + 4 * value[3]
        self.head = value[:4]
        self.shape_bytes = value[8:self.start]
        self.length = len(value)

    def matches(self, value: object) -> bool:
        """Same magic, version, ndim, shape and size as the learned record (the label may differ)."""
        return (isinstance(value, bytes) and len(value) == self.length and value.startswith(self.head)  # type: ignore[arg-type]
                and value.startswith(self.shape_bytes, 8))

    def table(self, values: list[bytes], shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """(labels, features) of records that all match: one join, then two column slices of the byte table."""
        table = np.frombuffer(b"".join(values), dtype=np.uint8).reshape(len(values), self.length)
        labels = table[:, 4:8].copy().view("<i4").ravel().astype(np.int64)
        x = np.ascontiguousarray(table[:, self.start:]).view("<f4").reshape(len(values), *shape)
        return labels, x.astype(np.float32, copy=False)

    def row(self, value: bytes, shape: tuple[int, ...]) -> tuple[int, np.ndarray]:
        """(label, features) of one matching record."""
        return (int.from_bytes(value[4:8], "little", signed=True),
                np.frombuffer(value, dtype="<f4", offset=self.start).reshape(shape))


_CODECS: dict[str, type[Codec]] = {"f32": F32Codec, "json": JsonCodec, "image": ImageCodec}


def get_codec(name: str, **opts: Any) -> Codec:
    """The codec called ``name`` (``f32``, ``json``, ``image``); options go to its constructor."""
    try:
        cls = _CODECS[name]
    except KeyError:
        raise ValueError(f"unknown codec {name!r}; choose from {', '.join(sorted(_CODECS))}") from None
    return cls(**opts)


def _target_shape(feature_shape: Sequence[int] | None, num_features: int | None) -> tuple[int, ...] | None:
    if feature_shape is not None:
        shape = tuple(int(d) for d in feature_shape)
        if num_features is not None and math.prod(shape) != num_features:
            raise ValueError(f"num_features={num_features} contradicts feature_shape={shape}")
        return shape
    if num_features is not None:
        return (int(num_features),)
    return None


def decode_records(
    records: Iterable[RawRecord],
    codec: Codec | str,
    *,
    num_features: int | None = None,
    feature_shape: Sequence[int] | None = None,
    max_classes: int | None = None,
) -> DecodedBatch:
    """Decode and validate one poll; never raises for a bad record.

    Expected layout: ``feature_shape`` if given (a flat record of the same size is reshaped to it), else
    ``num_features`` (rows are flattened to it), else the shape of the first good record. Labels must lie in
    ``[0, max_classes)`` (only ``>= 0`` when ``max_classes`` is None). ``next_offsets`` covers good and bad
    records alike.
    """
    if isinstance(codec, str):
        codec = get_codec(codec)
    target = _target_shape(feature_shape, num_features)
    flatten = feature_shape is None and num_features is not None
    expected_size = math.prod(target) if target is not None else None

    rows: list[np.ndarray | bytes] = []  # parsed features, or (f32) a raw value of the learned layout
    labels: list[int] = []
    good: list[RawRecord] = []
    bad: list[BadRecord] = []
    next_offsets: dict[tuple[str, int], int] = {}
    parse = codec.parse
    fast = _F32Fast() if isinstance(codec, F32Codec) else None
    all_raw = fast is not None  # every good row is a raw value of one layout: read them as one table

    for record in records:
        key = (record.topic, record.partition)
        if next_offsets.get(key, -1) <= record.offset:
            next_offsets[key] = record.offset + 1
        if fast is not None and fast.head is not None and fast.matches(record.value):
            # The throughput path: the layout of a record already validated; its label is range-checked and its
            # features checked for finiteness with the others', below.
            rows.append(record.value)  # type: ignore[arg-type]
            labels.append(0)
            good.append(record)
            continue
        try:
            x, y = parse(record)
            if target is None:
                target = x.shape
                expected_size = x.size
            elif x.shape != target:
                if x.size != expected_size:
                    raise DecodeError("wrong_feature_count", f"{x.size} features, expected {expected_size}")
                if not flatten and x.ndim != 1:
                    raise DecodeError("wrong_shape", f"shape {x.shape}, expected {target}")
                x = x.reshape(target)
            if y < 0 or (max_classes is not None and y >= max_classes):
                raise DecodeError("label_out_of_range", f"label {y}, classes [0, {max_classes})")
        except DecodeError as exc:
            bad.append(BadRecord(record, exc.reason))
            continue
        teaches = fast is not None and fast.head is None  # the poll's first good f32 record sets the layout
        if teaches:
            fast.learn(record.value)  # type: ignore[arg-type, union-attr]
        if teaches and fast.matches(record.value):  # type: ignore[union-attr]
            rows.append(record.value)  # type: ignore[arg-type]  # the layout it taught: read like the rest
        else:
            rows.append(x)
            all_raw = False
        labels.append(y)
        good.append(record)

    shape = target if target is not None else (0,)
    if rows:
        if fast is not None and all_raw:
            y_all, x_all = fast.table(rows, shape)  # type: ignore[arg-type]
        else:
            read = [fast.row(r, shape) if isinstance(r, bytes) and fast is not None else (labels[i], r)
                    for i, r in enumerate(rows)]
            y_all = np.asarray([label for label, _ in read], dtype=np.int64)
            x_all = np.stack([x for _, x in read]).astype(np.float32, copy=False)
        in_range = y_all >= 0 if max_classes is None else (y_all >= 0) & (y_all < max_classes)
        finite = np.isfinite(x_all.reshape(len(rows), -1)).all(axis=1)
        keep = in_range & finite
        if not keep.all():  # out-of-range labels and non-finite rows join the bad ones
            bad.extend(BadRecord(good[i], "label_out_of_range") for i in np.flatnonzero(~in_range).tolist())
            bad.extend(BadRecord(good[i], "non_finite") for i in np.flatnonzero(in_range & ~finite).tolist())
            kept = np.flatnonzero(keep)
            x_all, y_all = x_all[kept], y_all[kept]
            good = [good[i] for i in kept.tolist()]
    else:
        x_all = np.empty((0, *shape), dtype=np.float32)
        y_all = np.empty(0, dtype=np.int64)

    bad.sort(key=lambda b: (b.record.topic, b.record.partition, b.record.offset))  # per-partition order
    return DecodedBatch(
        x=x_all,
        y=y_all,
        topics=[r.topic for r in good],
        partitions=np.fromiter((r.partition for r in good), dtype=np.int32, count=len(good)),
        offsets=np.fromiter((r.offset for r in good), dtype=np.int64, count=len(good)),
        bad=bad,
        next_offsets=next_offsets,
    )
