"""The class-balanced reservoir gives every seen class an equal share, however skewed the stream."""

from __future__ import annotations

import torch

from lifelong.replay import ClassBalancedBuffer


def skewed_stream(sizes: dict[int, int], seed: int = 0) -> torch.Tensor:
    labels = torch.cat([torch.full((n,), c) for c, n in sizes.items()])
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]


def feed(buf: ClassBalancedBuffer, labels: torch.Tensor, batch: int = 16) -> None:
    for i in range(0, len(labels), batch):
        y = labels[i : i + batch]
        buf.insert(y.float().unsqueeze(1), y)


def test_equal_shares_from_a_skewed_stream():
    buf = ClassBalancedBuffer(60, seed=3)
    feed(buf, skewed_stream({0: 600, 1: 50, 2: 150}))
    assert buf.samples_per_class() == {0: 20, 1: 20, 2: 20}
    rows = buf.sample(60)
    assert torch.equal(rows["x"].squeeze(1).long(), rows["y"])  # inputs stayed with their labels


def test_new_classes_take_their_share_from_the_largest():
    buf = ClassBalancedBuffer(30, seed=0)
    feed(buf, torch.zeros(100, dtype=torch.long))
    assert buf.samples_per_class() == {0: 30}
    feed(buf, torch.ones(100, dtype=torch.long))
    assert buf.samples_per_class() == {0: 15, 1: 15}
    feed(buf, torch.full((3,), 2))  # a rare class keeps all it sent; the others share the rest
    counts = buf.samples_per_class()
    assert counts[2] == 3 and abs(counts[0] - counts[1]) <= 1 and sum(counts.values()) == 30


def test_within_a_class_the_sample_is_uniform():
    kept = torch.zeros(200)  # how often each sample (by id) was in memory at the end
    for run in range(300):
        buf = ClassBalancedBuffer(20, seed=run)
        ids = torch.arange(200)
        labels = ids % 2  # two classes of 100, ids tell the samples apart
        for i in range(0, 200, 25):
            buf.insert(ids[i : i + 25].float().unsqueeze(1), labels[i : i + 25])
        kept[buf.sample(20)["x"].squeeze(1).long()] += 1
    # each sample of each class is kept with probability 10 / 100: 30 expected, sd ~5.2
    assert kept.sum() == 300 * 20
    assert float((kept - 30).abs().max()) < 6 * 5.2
    assert float(kept[0::2].sum()) == float(kept[1::2].sum()) == 300 * 10  # 10 of each class every run
