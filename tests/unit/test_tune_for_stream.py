"""lifelong.daemon.factory.tune_for_stream: what the daemon does to its learner before the stream starts."""

from __future__ import annotations

import pytest
import torch

from lifelong.bench.throughput import ABLATIONS, CUDA_ABLATIONS, ablations
from lifelong.config import ConfigError, Settings, load_settings
from lifelong.daemon.factory import build_learner, tune_for_stream

MLP = {"name": "mlp", "input_shape": [4], "hidden": [8], "max_classes": 3}


@pytest.fixture
def compiled(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict]]:
    """Every nn.Module.compile call (module class, keyword arguments), without compiling anything."""
    calls: list[tuple[str, dict]] = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **kw: calls.append((type(self).__name__, kw)))
    threads = torch.get_num_threads()
    yield calls
    torch.set_num_threads(threads)


def test_compile_mode_reaches_torch_compile_once_per_part_and_once_per_learner(compiled):
    settings = Settings(model=MLP, daemon={"compile": True, "compile_mode": "reduce-overhead", "device": "cpu",
                                           "torch_threads": 1})
    learner = build_learner(settings)
    tune_for_stream(learner, settings)
    parts = [p for p in (getattr(learner.model, "backbone", None), learner.model.head) if p is not None]
    assert [name for name, _ in compiled] == [type(p).__name__ for p in parts]
    assert all(kw == {"mode": "reduce-overhead"} for _, kw in compiled)
    tune_for_stream(learner, settings)  # a reconnect: the learner is tuned already
    assert len(compiled) == len(parts)


def test_no_compile_by_default_and_threads_leave_a_core_per_fetcher(compiled, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    settings = Settings(model=MLP, daemon={"device": "cpu", "prefetch": 2, "fetch_workers": 1})
    learner = build_learner(settings)
    tune_for_stream(learner, settings)
    assert compiled == []
    assert torch.get_num_threads() == 3


def test_compile_mode_without_compile_is_rejected_with_its_key():
    with pytest.raises(ConfigError) as err:
        load_settings(None, daemon={"compile_mode": "max-autotune"})
    ((key, reason),) = err.value.problems
    assert (key, reason) == ("daemon", "compile_mode 'max-autotune' applies only with compile: true")
    assert load_settings(None, daemon={"compile": True, "compile_mode": "max-autotune"}).daemon.compile


def test_cuda_only_ablations_join_only_a_cuda_run():
    assert ablations("cpu") == ABLATIONS
    assert set(ablations("cuda")) == set(ABLATIONS) | set(CUDA_ABLATIONS)
    assert CUDA_ABLATIONS["compile=reduce-overhead"]["compile_mode"] == "reduce-overhead"


def test_bench_rejects_a_compile_mode_without_compile_before_any_work():
    from typer.testing import CliRunner

    from lifelong.cli import app

    result = CliRunner().invoke(app, ["bench", "--compile-mode", "reduce-overhead", "--records", "100"])
    assert result.exit_code == 2
    assert "applies only with compile: true" in " ".join(result.output.replace("│", " ").split())  # rich box
    assert "feeding" not in result.output  # rejected before the broker was fed


def test_ablation_rounds_alternate_their_order_and_pair_each_variant_with_its_round(monkeypatch):
    """No variant always runs first: each round reverses the last, and a variant's speed-up is the median of its
    rate over the default's in the same round (a slow round slows both)."""
    import contextlib
    from types import SimpleNamespace

    import lifelong.bench.throughput as throughput
    import lifelong.stream.broker

    monkeypatch.setattr(throughput, "ABLATIONS", {"default": {}, "prefetch=0": {"prefetch": 0}})
    monkeypatch.setattr(lifelong.stream.broker, "EmbeddedBroker",
                        lambda: contextlib.nullcontext(SimpleNamespace(bootstrap="127.0.0.1:1")))
    monkeypatch.setattr(throughput, "_feed", lambda *args, **kw: None)
    order: list[str] = []
    round_speed = [1.0, 0.5, 1.0]  # the second round runs on a busy host

    def fake_rate(settings, **kw):
        name = "prefetch=0" if settings.daemon.prefetch == 0 else "default"
        order.append(name)
        rnd = (len(order) - 1) // 2
        return throughput.Rate(events=1000, seconds=1 / (round_speed[rnd] * (1.2 if name != "default" else 1.0)),
                               accuracy=0.9)

    monkeypatch.setattr(throughput, "daemon_rate", fake_rate)
    opts = throughput.Options(repeats=3, ablation_records=100, progress=False)
    out = throughput.run_ablation(opts, put=lambda *a, **k: None, emit=lambda line: None)
    assert order == ["default", "prefetch=0", "prefetch=0", "default", "default", "prefetch=0"]
    assert out["prefetch=0"]["speedup"] == pytest.approx(1.2)
    assert out["default"]["speedup"] == pytest.approx(1.0)
