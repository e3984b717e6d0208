"""Codecs: round trips, and every reason a record can be rejected for."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import numpy as np
import pytest

from lifelong.stream.codecs import REASONS, DecodeError, F32Codec, decode_records, get_codec
from lifelong.stream.records import RawRecord


def rec(value: bytes | None, offset: int = 0, partition: int = 0, headers=(), topic: str = "t") -> RawRecord:
    return RawRecord(topic, partition, offset, None, value, tuple(headers))


def enc(codec_name: str, x, y: int, **opts) -> RawRecord:
    value, headers = get_codec(codec_name, **opts).encode(np.asarray(x), y)
    return rec(value, headers=headers)


RNG = np.random.default_rng(7)


@pytest.mark.parametrize("shape", [(784,), (1, 28, 28), (3, 4, 5), (1,)])
@pytest.mark.parametrize("name", ["f32", "json"])
def test_round_trip_is_exact_for_float32(name: str, shape: tuple[int, ...]) -> None:
    x = RNG.standard_normal(shape).astype(np.float32)
    got_x, got_y = get_codec(name).decode(enc(name, x, 7))
    assert got_x.dtype == np.float32
    assert got_x.shape == shape
    np.testing.assert_array_equal(got_x, x)
    assert got_y == 7


def test_f32_is_zero_copy_and_compact() -> None:
    x = np.arange(784, dtype=np.float32)
    value, headers = F32Codec().encode(x, 3)
    assert headers == []
    assert len(value) == 8 + 4 + 784 * 4
    got, _ = F32Codec().decode(rec(value))
    assert not got.flags.owndata  # a view on the record's bytes
    assert got.base is not None


def test_json_accepts_integral_float_label_and_extra_fields() -> None:
    value = json.dumps({"x": [1, 2.5, 3], "y": 4.0, "id": "abc", "ts": 1.5}).encode()
    x, y = get_codec("json").decode(rec(value))
    assert y == 4 and isinstance(y, int)
    np.testing.assert_array_equal(x, np.array([1, 2.5, 3], dtype=np.float32))


def test_json_encode_carries_id_and_ts() -> None:
    value, _ = get_codec("json").encode(np.zeros(2, np.float32), 1, record_id=42, ts=9.5)
    assert json.loads(value) == {"x": [0.0, 0.0], "y": 1, "id": 42, "ts": 9.5}


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_image_round_trip_with_label_header(fmt: str) -> None:
    img = (RNG.integers(0, 256, (1, 16, 16)) / 255.0).astype(np.float32)
    codec = get_codec("image", format=fmt)
    value, headers = codec.encode(img, 5)
    assert headers == [("label", b"5")]
    x, y = codec.decode(rec(value, headers=headers))
    assert y == 5 and x.shape == (1, 16, 16) and x.dtype == np.float32
    if fmt == "png":  # lossless
        np.testing.assert_allclose(x, img, atol=1e-6)
    else:
        assert np.abs(x - img).mean() < 0.2


def test_image_codec_reads_another_label_header_and_rgb() -> None:
    img = RNG.integers(0, 256, (3, 8, 8), dtype=np.uint8)
    codec = get_codec("image", label_header="class")
    value, headers = codec.encode(img, 2)
    x, y = codec.decode(rec(value, headers=headers))
    assert y == 2 and x.shape == (3, 8, 8)
    np.testing.assert_array_equal(np.rint(x * 255).astype(np.uint8), img)


def _png(array: np.ndarray, mode: str | None = None, **save) -> bytes:
    import io

    from PIL import Image

    image = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    out = io.BytesIO()
    image.save(out, format="PNG", **save)
    return out.getvalue()


def test_image_modes_keep_or_convert_their_channels() -> None:
    codec = get_codec("image")
    rgba = RNG.integers(0, 256, (5, 6, 4), dtype=np.uint8)
    x, _ = codec.decode(rec(_png(rgba), headers=[("label", b"1")]))
    assert x.shape == (4, 5, 6)
    np.testing.assert_array_equal(np.rint(x * 255).astype(np.uint8), rgba.transpose(2, 0, 1))
    rgb = RNG.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    x, _ = codec.decode(rec(_png(rgb, "P"), headers=[("label", b"1")]))  # palette: expanded to RGB
    assert x.shape == (3, 5, 6)
    bits = RNG.integers(0, 2, (5, 6), dtype=np.uint8) * 255
    x, _ = codec.decode(rec(_png(bits, "1"), headers=[("label", b"1")]))  # 1-bit: grey
    assert x.shape == (1, 5, 6) and set(np.unique(x).tolist()) <= {0.0, 1.0}


def test_sixteen_bit_png_is_scaled_to_one() -> None:
    grey = (np.arange(30, dtype=np.uint16).reshape(5, 6) * 2000)
    x, _ = get_codec("image").decode(rec(_png(grey), headers=[("label", b"1")]))
    np.testing.assert_allclose(x[0], grey / 65535.0, atol=1e-6)


def test_image_header_reads_the_size_without_decoding() -> None:
    from lifelong.stream.codecs import image_header

    img = RNG.integers(0, 256, (3, 16, 24), dtype=np.uint8)  # 24 wide, 16 high
    for fmt in ("png", "jpeg"):
        value, _ = get_codec("image", format=fmt).encode(img, 1)
        assert image_header(value) == (fmt, 24, 16, False)
    assert image_header(_png(img.transpose(1, 2, 0), "P"))[3] is True  # palette
    for junk in (b"GIF89a" + bytes(20), b"\xff\xd8\xff\xd9", b"\x89PNG\r\n\x1a\n\x00"):
        with pytest.raises(DecodeError) as err:
            image_header(junk)
        assert err.value.reason == "invalid_image"


def test_images_above_the_pixel_limit_are_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    value = _png(RNG.integers(0, 256, (32, 32), dtype=np.uint8))
    headers = [("label", b"1")]
    with pytest.raises(DecodeError) as err:  # the daemon bounds it by the expected feature count
        get_codec("image", max_pixels=784).decode(rec(value, headers=headers))
    assert err.value.reason == "wrong_feature_count" and "32 x 32" in err.value.detail
    bomb = bytearray(value)
    bomb[16:24] = struct.pack(">II", 200_000, 200_000)  # a header that would inflate to 40 G pixels
    decoded: list = []
    monkeypatch.setattr("torchvision.io.decode_image", lambda *a, **k: decoded.append(a))
    with pytest.raises(DecodeError) as err:
        get_codec("image").decode(rec(bytes(bomb), headers=headers))
    assert err.value.reason == "invalid_image" and "above" in err.value.detail
    assert decoded == []  # refused from the header: never handed to the decoder
    monkeypatch.undo()
    with pytest.raises(DecodeError) as err:
        get_codec("image").decode(rec(value[: len(value) // 2], headers=headers))  # truncated
    assert err.value.reason == "invalid_image"


def _f32(label: int = 1, version: int = 1, magic: bytes = b"LF", shape=(4,), payload: bytes | None = None):
    head = struct.pack("<2sBBi", magic, version, len(shape), label) + struct.pack(f"<{len(shape)}I", *shape)
    if payload is None:
        payload = np.ones(int(np.prod(shape)), "<f4").tobytes()
    return head + payload


GOOD_JSON = {"x": [0.0, 1.0, 2.0, 3.0], "y": 1}


def _json(**change) -> bytes:
    doc = {**GOOD_JSON, **change}
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


BAD_CASES = [
    ("json", None, "empty_value"),
    ("json", b"", "empty_value"),
    ("json", b'{"x": [1, 2', "invalid_json"),
    ("json", b"\xff\xfe", "invalid_json"),
    ("json", b"[1, 2, 3]", "not_an_object"),
    ("json", _json(x=...), "missing_features"),
    ("json", _json(y=...), "missing_label"),
    ("json", _json(x=["a", "b", "c", "d"]), "bad_feature_type"),
    ("json", _json(x=[None, 1, 2, 3]), "bad_feature_type"),
    ("json", _json(y="3"), "bad_label_type"),
    ("json", _json(y=1.5), "bad_label_type"),
    ("json", _json(y=True), "bad_label_type"),
    ("json", _json(y=None), "bad_label_type"),
    ("json", _json(y=[1]), "bad_label_type"),
    ("json", _json(y=-1), "label_out_of_range"),
    ("json", _json(y=10), "label_out_of_range"),
    ("json", _json(x=[1.0, 2.0, 3.0]), "wrong_feature_count"),
    ("json", _json(x=[[1.0, 2.0], [3.0]]), "wrong_shape"),
    ("json", _json(x=5.0), "wrong_shape"),
    ("json", _json(x=[0.0, float("nan"), 2.0, 3.0]), "non_finite"),  # json.dumps writes NaN
    ("json", _json(x=[0.0, float("inf"), 2.0, 3.0]), "non_finite"),
    ("json", b'{"x": [0, 1e999, 2, 3], "y": 1}', "non_finite"),
    ("f32", None, "empty_value"),
    ("f32", b"", "empty_value"),
    ("f32", b"LF\x01", "truncated"),
    ("f32", _f32()[:-1], "truncated"),
    ("f32", _f32() + b"\0\0\0\0", "truncated"),
    ("f32", _f32(magic=b"XX"), "bad_magic"),
    ("f32", _f32(version=2), "bad_header_version"),
    ("f32", _f32(version=0), "bad_header_version"),
    ("f32", _f32(label=-3), "label_out_of_range"),
    ("f32", _f32(label=10), "label_out_of_range"),
    ("f32", _f32(shape=(5,)), "wrong_feature_count"),
    ("f32", _f32(shape=(2, 2)), "wrong_shape"),  # right count, but 2-D where (4,) is expected
    ("f32", _f32(payload=np.array([1, np.nan, 1, 1], "<f4").tobytes()), "non_finite"),
    ("f32", _f32(payload=np.array([1, 1, -np.inf, 1], "<f4").tobytes()), "non_finite"),
    ("image", b"not an image", "invalid_image"),
]


@pytest.mark.parametrize(("name", "value", "reason"), BAD_CASES)
def test_every_bad_record_gets_its_reason(name: str, value: bytes | None, reason: str) -> None:
    headers = [("label", b"1")] if name == "image" else []
    good_value, good_headers = get_codec(name).encode(np.ones(4, np.float32) if name != "image"
                                                       else np.ones((1, 2, 2), np.float32), 1)
    records = [rec(good_value, 0, headers=good_headers), rec(value, 1, headers=headers),
               rec(good_value, 2, headers=good_headers)]
    # (4,) expected: a (2, 2) f32 record keeps its shape and is refused; a flat record would be reshaped.
    shape = (1, 2, 2) if name == "image" else (4,)
    batch = decode_records(records, name, feature_shape=shape, max_classes=10)
    assert reason in REASONS
    assert [(b.record.offset, b.reason) for b in batch.bad] == [(1, reason)]
    assert batch.offsets.tolist() == [0, 2]
    assert batch.next_offsets == {("t", 0): 3}


def test_image_label_header_problems() -> None:
    codec = get_codec("image")
    value, _ = codec.encode(np.zeros((1, 4, 4), np.float32), 1)
    with pytest.raises(DecodeError) as missing:
        codec.decode(rec(value))
    assert missing.value.reason == "missing_label"
    with pytest.raises(DecodeError) as wrong:
        codec.decode(rec(value, headers=[("label", b"cat")]))
    assert wrong.value.reason == "bad_label_type"


def test_decode_error_is_a_value_error_with_reason() -> None:
    with pytest.raises(ValueError, match="bad_header_version"):
        get_codec("f32").decode(rec(_f32(version=9)))


def test_decode_checks_finiteness_on_its_own() -> None:
    with pytest.raises(DecodeError) as err:
        get_codec("f32").decode(rec(_f32(payload=np.array([1, np.nan, 1, 1], "<f4").tobytes())))
    assert err.value.reason == "non_finite"


def test_unknown_codec_name() -> None:
    with pytest.raises(ValueError, match="unknown codec"):
        get_codec("avro")


def test_batch_arrays_offsets_and_next_offsets_cover_bad_records() -> None:
    codec = get_codec("f32")
    records = []
    expected_x = []
    for i in range(12):
        partition = i % 3
        x = np.full(6, i, np.float32)
        value = codec.encode(x, i % 5)[0] if i != 10 else b"junk-bad-value"
        records.append(RawRecord("a" if i < 9 else "b", partition, 100 + i, None, value))
        if i != 10:
            expected_x.append(x)
    batch = decode_records(records, codec, num_features=6, max_classes=5)
    assert len(batch) == 11 and batch.total == 12
    assert batch.x.shape == (11, 6) and batch.x.dtype == np.float32
    np.testing.assert_array_equal(batch.x, np.stack(expected_x))
    assert batch.y.dtype == np.int64
    assert batch.y.tolist() == [i % 5 for i in range(12) if i != 10]
    assert batch.topics == ["a"] * 9 + ["b", "b"]
    assert batch.partitions.tolist() == [i % 3 for i in range(12) if i != 10]
    assert batch.offsets.tolist() == [100 + i for i in range(12) if i != 10]
    assert [(b.reason, b.record.offset) for b in batch.bad] == [("bad_magic", 110)]
    assert batch.next_offsets == {("a", 0): 107, ("a", 1): 108, ("a", 2): 109, ("b", 0): 110,
                                  ("b", 1): 111, ("b", 2): 112}


def test_flat_records_are_reshaped_to_feature_shape_and_num_features_flattens() -> None:
    codec = get_codec("f32")
    flat = rec(codec.encode(np.arange(4, dtype=np.float32), 1)[0], 0)
    square = rec(codec.encode(np.arange(4, dtype=np.float32).reshape(2, 2), 1)[0], 1)
    shaped = decode_records([flat, square], codec, feature_shape=(2, 2))
    assert shaped.x.shape == (2, 2, 2) and not shaped.bad
    flattened = decode_records([flat, square], codec, num_features=4)
    assert flattened.x.shape == (2, 4) and not flattened.bad
    with pytest.raises(ValueError, match="contradicts"):
        decode_records([flat], codec, num_features=5, feature_shape=(2, 2))


def test_without_expectations_the_first_good_record_sets_the_shape() -> None:
    codec = get_codec("json")
    records = [rec(b"{}", 0), rec(_json(), 1), rec(_json(x=[1.0, 2.0]), 2), rec(_json(y=123), 3)]
    batch = decode_records(records, codec)
    assert batch.x.shape == (2, 4)
    assert batch.y.tolist() == [1, 123]  # no max_classes: any label >= 0
    assert [(b.record.offset, b.reason) for b in batch.bad] == [(0, "missing_features"),
                                                               (2, "wrong_feature_count")]


def test_non_finite_rows_are_removed_and_order_kept() -> None:
    codec = get_codec("f32")
    xs = [np.full(3, v, np.float32) for v in (1, np.nan, 3, np.inf, 5)]
    batch = decode_records([rec(codec.encode(x, 0)[0], i) for i, x in enumerate(xs)], codec)
    assert batch.offsets.tolist() == [0, 2, 4]
    assert batch.x[:, 0].tolist() == [1, 3, 5]
    assert [(b.record.offset, b.reason) for b in batch.bad] == [(1, "non_finite"), (3, "non_finite")]


def test_empty_poll_gives_an_empty_batch_with_the_expected_shape() -> None:
    batch = decode_records([], "f32", feature_shape=(1, 28, 28))
    assert batch.x.shape == (0, 1, 28, 28) and batch.y.shape == (0,)
    assert batch.next_offsets == {} and batch.bad == []


def test_all_bad_poll_still_advances_offsets() -> None:
    batch = decode_records([rec(b"", 5), rec(None, 6)], "json", num_features=4)
    assert len(batch) == 0 and batch.x.shape == (0, 4)
    assert batch.next_offsets == {("t", 0): 7}


def test_stream_layer_does_not_import_torch() -> None:
    code = ("import sys, numpy as np; import lifelong.stream.codecs as c; "
            "c.decode_records([], 'f32'); c.get_codec('json').encode(np.zeros(2), 1); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_poll_decodes_as_its_records_one_by_one() -> None:
    """The f32 throughput path (records of the first record's layout read as one byte table) against each record
    decoded on its own (always the parser): mixed layouts, labels out of range, non-finite rows, bytearray
    values, junk, and interleaved partitions give the same rows, labels, order and reasons."""
    codec = get_codec("f32")
    rng = np.random.default_rng(3)
    records = []
    for i in range(400):
        kind = rng.integers(8)
        x = rng.normal(size=6).astype(np.float32)
        label = int(rng.integers(0, 5))
        if kind == 0:
            label = int(rng.choice([-1, 5, 99]))  # out of range
        elif kind == 1:
            x[int(rng.integers(6))] = rng.choice([np.nan, np.inf])
        value = codec.encode(x.reshape(2, 3) if kind == 2 else x, label)[0]  # another shape, same count
        if kind == 3:
            value = bytearray(value)
        elif kind == 4:
            value = value[:-3]  # truncated
        records.append(RawRecord("t", int(rng.integers(3)), i, None, value))
    batch = decode_records(records, codec, num_features=6, max_classes=5)
    alone = [decode_records([r], codec, num_features=6, max_classes=5) for r in records]
    good = [(r, b) for r, b in zip(records, alone, strict=True) if len(b)]
    assert batch.offsets.tolist() == [r.offset for r, _ in good]
    np.testing.assert_array_equal(batch.x, np.concatenate([b.x for _, b in good]))
    assert batch.y.tolist() == [int(b.y[0]) for _, b in good]
    assert batch.partitions.tolist() == [r.partition for r, _ in good]
    expected_bad = sorted(((b.bad[0].record.partition, b.bad[0].record.offset, b.bad[0].reason) for b in alone
                           if b.bad), key=lambda t: (t[0], t[1]))
    assert [(b.record.partition, b.record.offset, b.reason) for b in batch.bad] == expected_bad
    assert {"label_out_of_range", "non_finite", "truncated"} <= {reason for *_, reason in expected_bad}
    assert batch.x.flags.writeable and batch.x.flags.c_contiguous
