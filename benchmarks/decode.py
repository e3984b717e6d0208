"""What decoding one poll costs per record, without a broker: ``decode_records`` against the codec's own parser.

The fetch processes decode every record (lifelong.stream.codecs), so this cost is paid once per event beside the
client's own. For ``f32`` a poll's records of one layout are read as one byte table (labels and features as two
column slices); the baseline parses and validates each record on its own (``codec.decode``) and stacks the rows,
the obvious loop. Both validate the same things and give the same arrays (tests/unit/test_codecs.py). The two are
timed back to back ``--repeats`` times on a poll of ``--records`` MNIST rows (784 float32 features): medians,
and the median of the pairs' ratios.

    python benchmarks/decode.py [--records 1800] [--repeats 7] [--codecs f32,json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lifelong.bench.results import record  # noqa: E402
from lifelong.bench.throughput import mnist_arrays  # noqa: E402
from lifelong.stream.codecs import decode_records, get_codec  # noqa: E402
from lifelong.stream.records import RawRecord  # noqa: E402


def one_by_one(records: list[RawRecord], codec, max_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The baseline: parse and validate each record, then stack (no bad record here to set aside)."""
    rows, labels = [], []
    for r in records:
        x, y = codec.decode(r)
        if not 0 <= y < max_classes:
            raise ValueError("label out of range")
        rows.append(x)
        labels.append(y)
    return np.stack(rows), np.asarray(labels, dtype=np.int64)


def paired_us(ours, base, records: int, repeats: int) -> tuple[float, float, float]:
    """Median microseconds per record of each, and the median of the per-pair ratios base/ours: each pair is
    timed back to back, so a change in the host's speed between pairs does not enter a ratio."""
    ours(), base()  # warm-up
    mine, theirs = [], []
    for _ in range(repeats):
        for fn, out in ((ours, mine), (base, theirs)):
            start = time.perf_counter()
            fn()
            out.append((time.perf_counter() - start) / records * 1e6)
    return (statistics.median(mine), statistics.median(theirs),
            statistics.median(b / a for a, b in zip(mine, theirs, strict=True)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1800, help="Records in one poll (1,800: one 5.7 MB fetch).")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--codecs", default="f32,json")
    args = parser.parse_args()
    x, y = mnist_arrays(args.records)
    for name in args.codecs.split(","):
        codec = get_codec(name)
        records = [RawRecord("t", 0, i, None, codec.encode(x[i], int(y[i]))[0]) for i in range(args.records)]
        batch = decode_records(records, codec, num_features=x.shape[1], max_classes=10)
        reference = one_by_one(records, codec, 10)
        assert np.array_equal(batch.x, reference[0]) and np.array_equal(batch.y, reference[1])
        ours, base, speedup = paired_us(
            lambda records=records, codec=codec: decode_records(records, codec, num_features=x.shape[1],
                                                                max_classes=10),
            lambda records=records, codec=codec: one_by_one(records, codec, 10), args.records, args.repeats)
        print(f"{name}: decode_records {ours:.2f} us per record, one by one {base:.2f}: {speedup:.2f}x "
              "(median of the pairs' ratios)")
        tags = {"codec": name, "records": args.records, "features": x.shape[1], "repeats": args.repeats}
        record("decode", "decode_records_us_per_record", ours, "us/record", **tags)
        record("decode", "one_by_one_us_per_record", base, "us/record", **tags)
        record("decode", "speedup_over_one_by_one", speedup, "ratio", **tags)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
