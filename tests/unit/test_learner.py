"""The learner: prequential order, head growth by class activation, non-finite steps skipped."""

import numpy as np
import pytest
import torch

from lifelong.learner import Learner, build_optimizer, fast_bf16
from lifelong.models import build_model


def make_learner(max_classes: int = 5, lr: float = 0.1) -> Learner:
    torch.manual_seed(0)
    model = build_model("mlp", [8], max_classes, [16])
    return Learner(model, build_optimizer("sgd", model.parameters(), lr), batch_size=16)


def blobs(classes, n=64, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.choice(classes, n)
    x = rng.normal(0, 0.3, (n, 8)).astype(np.float32)
    x[np.arange(n), y] += 3.0
    return x, y


def test_first_batch_is_predicted_before_learning():
    learner = make_learner()
    x, y = blobs([0, 1])
    result = learner.process(x, y)
    assert (result.predictions == -1).all()  # nothing learned yet: no class can be predicted
    assert not result.correct.any()
    assert sorted(result.new_classes) == [0, 1]


def test_new_label_grows_head_without_touching_old_classes():
    learner = make_learner()
    for seed in range(5):
        learner.process(*blobs([0, 1], seed=seed))
    assert learner.seen_classes == [0, 1]
    old_rows = learner.model.head.weight[:2].detach().clone()
    old_bias = learner.model.head.bias[:2].detach().clone()
    learner._activate([3])
    assert learner.seen_classes == [0, 1, 3]
    assert torch.equal(learner.model.head.weight[:2], old_rows)
    assert torch.equal(learner.model.head.bias[:2], old_bias)
    # predictions never name a class that was never seen
    preds = learner.predict(blobs([0, 1, 2, 3, 4], seed=9)[0])
    assert set(preds.tolist()) <= {0, 1, 3}


def test_label_first_seen_mid_stream_is_learned():
    learner = make_learner()
    for seed in range(10):
        learner.process(*blobs([0, 1], seed=seed))
    for seed in range(10, 40):
        result = learner.process(*blobs([0, 1, 2], seed=seed))
    assert 2 in learner.seen_classes
    assert result.correct.mean() > 0.8


def test_non_finite_batch_skips_step_and_keeps_weights():
    learner = make_learner()
    learner.process(*blobs([0, 1]))
    x, y = blobs([0, 1], seed=1)
    x[0, 0] = np.inf
    result = learner.process(x, y)
    assert result.skipped_steps >= 1
    assert learner.skipped_steps >= 1
    for p in learner.model.parameters():
        assert torch.isfinite(p).all()
    # the poisoned chunk was skipped but the other chunks trained
    assert result.skipped_steps < len(y) // learner.batch_size


def test_the_finiteness_check_sees_one_bad_gradient_entry_in_any_dtype():
    learner = make_learner()
    learner._params.append(torch.nn.Parameter(torch.zeros(3, dtype=torch.float64)))  # a float64 one beside
    params = learner._params
    loss = torch.tensor(0.5)
    for p in params:
        p.grad = torch.ones_like(p)
    assert learner._finite(loss)
    for bad in (float("inf"), float("-inf"), float("nan")):
        params[0].grad[3, 1] = bad
        assert not learner._finite(loss)
        params[0].grad[3, 1] = 1.0
    assert not learner._finite(torch.tensor(float("nan")))
    for p in params:
        p.grad = None
    assert learner._finite(loss)  # no gradients: the loss alone decides


def test_state_round_trip_continues_identically():
    a, b = make_learner(), make_learner()
    for seed in range(3):
        a.process(*blobs([0, 1, 2], seed=seed))
    b.load_state_dict(a.state_dict())
    x, y = blobs([0, 1, 2], seed=7)
    ra, rb = a.process(x, y), b.process(x, y)
    assert np.array_equal(ra.predictions, rb.predictions)
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(p, q)


def _with(optimizer: str, lr: float, **kwargs) -> Learner:
    torch.manual_seed(0)
    model = build_model("mlp", [8], 5, [16])
    return Learner(model, build_optimizer(optimizer, model.parameters(), lr, **kwargs), batch_size=16)


def test_a_resumed_learner_takes_the_configured_optimizer_settings():
    """A changed optim.lr (or momentum) applies on restart; the moments of the same optimizer are kept."""
    a = _with("adam", 0.01)
    a.process(*blobs([0, 1, 2]))
    b = _with("adam", 0.002)
    b.load_state_dict(a.state_dict())
    assert b.optimizer.param_groups[0]["lr"] == 0.002 and b._base_lrs == [0.002]
    first = next(iter(a.model.parameters()))
    assert torch.equal(b.optimizer.state[next(iter(b.model.parameters()))]["exp_avg"],
                       a.optimizer.state[first]["exp_avg"])
    b.process(*blobs([0, 1, 2], seed=1))  # steps on from the kept moments


def test_another_optimizer_starts_its_state_afresh_and_keeps_the_weights():
    a = _with("adam", 0.01)
    a.process(*blobs([0, 1, 2]))
    b = _with("sgd", 0.05, momentum=0.9)
    b.load_state_dict(a.state_dict())  # Adam's moments into SGD used to fail at the first step (KeyError)
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(p, q)
    assert b.optimizer.param_groups[0]["lr"] == 0.05 and not b.optimizer.state
    b.process(*blobs([0, 1, 2], seed=1))


def test_a_drift_boost_under_way_survives_a_restart_on_the_configured_lr():
    a = _with("sgd", 0.1)
    a.boost_lr(5.0, events=10_000)
    a.process(*blobs([0, 1]))
    b = _with("sgd", 0.2)
    b.load_state_dict(a.state_dict())
    assert b.optimizer.param_groups[0]["lr"] == pytest.approx(1.0)  # the new base, still boosted 5x


def test_lr_boost_restores():
    learner = make_learner(lr=0.1)
    learner.boost_lr(5.0, events=100)
    assert learner.optimizer.param_groups[0]["lr"] == 0.5
    for seed in range(2):
        learner.process(*blobs([0, 1], seed=seed))
    assert learner.optimizer.param_groups[0]["lr"] == 0.1


def test_out_of_memory_halves_batch_and_retries(monkeypatch):
    learner = make_learner()
    learner.batch_size = 32
    real_step = learner._step
    calls = {"n": 0}

    def flaky_step(x, y):
        calls["n"] += 1
        if x.shape[0] > 8:
            raise torch.cuda.OutOfMemoryError("simulated")
        return real_step(x, y)

    monkeypatch.setattr(learner, "_step", flaky_step)
    x, y = blobs([0, 1], n=64)
    result = learner.process(x, y)
    assert learner.batch_size == 8
    assert learner.oom_events == 2
    assert result.skipped_steps == 0
    assert np.isfinite(result.train_loss)
    assert learner.train_steps == 64 // 8


def test_loss_of_a_never_seen_class_is_left_out():
    learner = make_learner()
    learner.process(*blobs([0, 1]))
    x, y = blobs([0, 1, 2], seed=3)
    result = learner.process(x, y)
    assert np.isnan(result.losses[y == 2]).all()
    assert np.isfinite(result.losses[y != 2]).all()
    assert result.losses[y != 2].max() < 100


def _paired(shared: bool, model_name: str = "mlp", plugins=()) -> Learner:
    torch.manual_seed(0)
    shape = [8] if model_name == "mlp" else [1, 8, 8]
    model = build_model(model_name, shape, 5, [16])
    return Learner(model, build_optimizer("adam", model.parameters(), 0.01), list(plugins), batch_size=32,
                   shared_forward=shared)


def test_shared_forward_predicts_as_a_separate_pass_would():
    """Predictions read off the training forward equal those of a separate no-grad pass (one chunk per batch),
    and training is unchanged, so the weights end equal too."""
    stream = [blobs([0, 1] if seed < 10 else [0, 1, 2], n=32, seed=seed) for seed in range(30)]  # 2 arrives late

    def run(shared: bool):  # one learner at a time: new class rows draw from torch's global generator
        learner = _paired(shared)
        assert learner.shared_forward is shared
        return learner, [learner.process(x, y) for x, y in stream]

    shared, with_shared = run(True)
    separate, with_separate = run(False)
    for a, b in zip(with_shared, with_separate, strict=True):
        np.testing.assert_array_equal(a.predictions, b.predictions)
        np.testing.assert_allclose(a.losses, b.losses, rtol=1e-5, atol=1e-6, equal_nan=True)
    arrival_y, arrival = stream[10][1], with_shared[10]
    assert 2 not in arrival.predictions.tolist() and np.isnan(arrival.losses[arrival_y == 2]).all()
    assert with_shared[-1].correct.mean() > 0.8
    for p, q in zip(shared.model.parameters(), separate.model.parameters(), strict=True):
        torch.testing.assert_close(p, q)


@pytest.mark.parametrize("strategy", ["none", "replay", "ace"])
def test_losses_read_off_the_training_step_are_the_prequential_losses(strategy):
    """With no class new to the batch, a stream row's training cross-entropy is its prequential loss, and the
    learner hands that back instead of computing it again; with replayed rows behind the stream's it still is.
    ER-ACE masks the training loss to the batch's classes: there the losses must be computed apart, so a reuse
    would show here as losses unlike a separate pass's."""
    from lifelong.replay.plugin import ReplayPlugin
    from lifelong.replay.reservoir import ReservoirBuffer
    from lifelong.strategies.ace import ACE

    stream = [blobs([0, 1, 2] if seed % 3 else [0, 1], n=32, seed=seed) for seed in range(20)]

    def run(shared: bool):
        plugins = {"none": [], "replay": [ReplayPlugin(lambda d: ReservoirBuffer(64, d, seed=1), batch_size=16)],
                   "ace": [ReplayPlugin(lambda d: ReservoirBuffer(64, d, seed=1), batch_size=16), ACE()]}[strategy]
        learner = _paired(shared, plugins=plugins)
        assert learner.shared_forward is shared
        return [learner.process(x, y) for x, y in stream]

    with_shared, with_separate = run(True), run(False)
    for a, b in zip(with_shared[3:], with_separate[3:], strict=True):  # every class seen: nothing new to mask
        assert np.isfinite(a.losses).all()
        np.testing.assert_allclose(a.losses, b.losses, rtol=1e-5, atol=1e-6)


def test_a_label_outside_the_head_is_refused_with_its_value():
    learner = make_learner(max_classes=5)
    x, y = blobs([0, 1])
    y[3] = 7
    with pytest.raises(ValueError, match="label 7 is outside the model's classes 0..4"):
        learner.process(x, y)
    assert learner.seen_classes == []  # nothing was opened for the batch that was refused


def test_shared_forward_off_where_predictions_differ_from_training():
    import pytest

    from lifelong.replay.plugin import ReplayPlugin
    from lifelong.replay.reservoir import ReservoirBuffer

    torch.manual_seed(0)
    bn = build_model("resnet18_reduced", [3, 16, 16], 5, [16])
    auto = Learner(bn, build_optimizer("sgd", bn.parameters(), 0.1), shared_forward=None)
    assert not auto.shared_forward  # BatchNorm: eval and train outputs differ
    with pytest.raises(ValueError, match="optim.shared_forward.*BatchNorm2d"):
        Learner(bn, build_optimizer("sgd", bn.parameters(), 0.1), shared_forward=True)
    nme = ReplayPlugin(lambda d: ReservoirBuffer(50, d), nme=True)
    assert not _paired(None, plugins=[nme]).shared_forward  # NME replaces the model's predictions
    plain = ReplayPlugin(lambda d: ReservoirBuffer(50, d))
    assert _paired(None, plugins=[plain]).shared_forward


@pytest.mark.parametrize(("flags", "expected"), [
    ("fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni", True),  # AMD Zen 4, Intel Cooper Lake
    ("fpu sse2 avx2 avx512f amx_bf16 amx_tile", True),  # Intel Sapphire Rapids
    ("fpu sse2 avx2 avx512f avx512_vnni", False),  # AVX-512 without a native bf16 dot product
])
def test_autocast_auto_picks_bf16_only_on_cpus_with_bf16_instructions(tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: test\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    assert fast_bf16(torch.device("cpu"), str(cpuinfo)) is expected
    assert fast_bf16(torch.device("cpu"), str(tmp_path / "missing")) is False
    assert fast_bf16(torch.device("meta"), str(cpuinfo)) is False  # not a CPU: never guessed
