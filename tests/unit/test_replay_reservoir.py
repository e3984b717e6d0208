"""Reservoir sampling keeps a uniform sample of the whole stream (Vitter's algorithm R)."""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import chi2

from lifelong.replay import ReservoirBuffer

N_ITEMS, CAPACITY, RUNS = 40, 8, 1500
BATCHES = [1, 3, 7, 2, 11, 5, 4, 7]  # uneven micro-batches: the batched insertion must stay exact


def inclusion_counts(make_buffer) -> np.ndarray:
    counts = np.zeros(N_ITEMS)
    for run in range(RUNS):
        buf = make_buffer(run)
        start = 0
        for size in BATCHES:
            items = torch.arange(start, start + size)
            buf.insert(items.float().unsqueeze(1), items)
            start += size
        stored = buf.sample(CAPACITY)["y"].numpy()
        assert len(set(stored.tolist())) == CAPACITY  # distinct items, memory full
        counts[stored] += 1
    return counts


def chi_square_p(counts: np.ndarray) -> float:
    expected = RUNS * CAPACITY / N_ITEMS
    stat = ((counts - expected) ** 2 / expected).sum()
    return float(chi2.sf(stat, N_ITEMS - 1))


def test_every_item_of_the_stream_is_kept_with_equal_probability():
    assert sum(BATCHES) == N_ITEMS
    counts = inclusion_counts(lambda run: ReservoirBuffer(CAPACITY, seed=run))
    assert chi_square_p(counts) > 1e-3, counts
    # each item is kept with probability capacity / n = 0.2 (RUNS * 0.2 = 300, sd ~15.5)
    assert np.all(np.abs(counts - 300) < 6 * 15.5)


def test_the_chi_square_check_detects_a_biased_memory():
    class KeepLatest(ReservoirBuffer):  # a sliding window: a biased "memory" the test must reject
        def insert(self, x, y, **extra):
            for i in range(len(y)):
                slot = self.seen % self.capacity
                self.store.write(torch.tensor([slot]), {"x": x[i : i + 1], "y": y[i : i + 1]})
                self.labels[slot] = y[i]
                self.seen += 1
                self.size = min(self.capacity, self.seen)

    counts = inclusion_counts(lambda run: KeepLatest(CAPACITY, seed=run))
    assert chi_square_p(counts) < 1e-9


def test_fills_first_then_counts_the_whole_stream():
    buf = ReservoirBuffer(5, seed=0)
    buf.insert(torch.zeros(3, 2), torch.tensor([0, 1, 2]))
    assert len(buf) == 3 and buf.samples_per_class() == {0: 1, 1: 1, 2: 1}
    buf.insert(torch.ones(100, 2), torch.full((100,), 4))
    assert len(buf) == 5 and buf.seen == 103
    assert sum(buf.samples_per_class().values()) == 5
    rows = buf.sample(64)
    assert rows["x"].shape == (5, 2) and rows["y"].shape == (5,)


def test_extra_fields_travel_with_their_sample():
    buf = ReservoirBuffer(16, seed=1)
    x = torch.randn(50, 3)
    y = torch.arange(50)
    buf.insert(x, y, logits=x * 2)
    rows = buf.sample(16)
    assert torch.equal(rows["x"], x[rows["y"]])
    assert torch.equal(rows["logits"], 2 * x[rows["y"]])


def test_a_slot_drawn_twice_in_one_batch_keeps_the_later_sample():
    from lifelong.replay.store import last_wins

    slots, sources = last_wins([4, 1, 4, 2, 1, 4], [0, 1, 2, 3, 4, 5])
    assert dict(zip(slots.tolist(), sources.tolist(), strict=True)) == {4: 5, 1: 4, 2: 3}
    assert sources.tolist() == sorted(sources.tolist())  # in the order the winners arrived
    assert slots.dtype == sources.dtype == torch.long
    empty = last_wins([], [])
    assert empty[0].numel() == empty[1].numel() == 0


def test_an_insert_equals_one_sample_at_a_time():
    """Batched algorithm R (slots drawn for the whole batch, repeats resolved, the later wins) leaves the memory
    sequential insertion leaves, draw for draw."""
    batched, single = ReservoirBuffer(8, seed=3), ReservoirBuffer(8, seed=3)
    x = torch.arange(200.0).unsqueeze(1)
    y = torch.arange(200) % 5
    for start in range(0, 200, 50):
        batched.insert(x[start:start + 50], y[start:start + 50])
    for i in range(200):  # one draw per sample from the same generator, in the same order
        single.insert(x[i:i + 1], y[i:i + 1])
    assert single.seen == batched.seen == 200
    assert torch.equal(batched.store.fields["x"], single.store.fields["x"])
    assert torch.equal(batched.labels, single.labels)
