"""RESULTS.md's targets table: each target's latest run on its setting, every run's range, and honest verdicts."""

from lifelong.bench.results import load, record
from lifelong.bench.targets import TARGETS, machine_kind, render_targets, standings

SETTING = {"codec": "f32", "dataset": "mnist", "model": "mlp", "replay": "reservoir-500", "client": "kafka-python",
           "device": "cpu"}


def _row(metric: str, value: float, date: str, **settings) -> dict:
    return {"benchmark": "throughput", "metric": metric, "value": value, "unit": "ratio", "date": date,
            "machine": "2 x test", "command": "test", **{**SETTING, **settings}}


def _standing(rows, metric):
    return next(s for s in standings(rows) if s.target.metric == metric)


def test_the_latest_run_decides_and_other_settings_do_not_count():
    rows = [_row("cpu_end_to_end_over_raw", 0.85, "2026-01-01T00:00:00Z"),
            _row("cpu_end_to_end_over_raw", 0.70, "2026-01-02T00:00:00Z"),
            _row("cpu_end_to_end_over_raw", 0.99, "2026-01-03T00:00:00Z", model="mlp[16]"),  # a ceiling run
            _row("cpu_end_to_end_over_raw", 0.95, "2026-01-04T00:00:00Z", client="confluent")]
    s = _standing(rows, "cpu_end_to_end_over_raw")
    assert [r["value"] for r in s.runs] == [0.85, 0.70]
    assert (s.latest_met, s.met_runs) == (False, 1)
    line = next(x for x in render_targets(rows) if x.startswith("| cpu_end_to_end_over_raw"))
    assert "| 0.7 | no |" in line and "0.7 to 0.85" in line and "1 of 2" in line


def test_beating_river_counts_only_at_equal_or_better_accuracy():
    date = "2026-01-01T00:00:00Z"
    fast_but_worse = [_row("end_to_end_over_river", 50.0, date, baseline_accuracy=0.95),
                      _row("prequential_accuracy_prefix", 0.90, date)]
    s = _standing(fast_but_worse, "end_to_end_over_river")
    assert (s.latest_met, s.latest_accuracy) == (False, (0.90, 0.95))
    better = [_row("end_to_end_over_river", 50.0, date, baseline_accuracy=0.85),
              _row("prequential_accuracy_prefix", 0.90, date)]
    assert _standing(better, "end_to_end_over_river").latest_met is True
    unknown = [_row("end_to_end_over_river", 50.0, date, baseline_accuracy=0.85)]  # no accuracy of ours recorded
    assert _standing(unknown, "end_to_end_over_river").latest_met is False


def test_each_machine_kind_has_its_own_row_the_latest_measured_first():
    rows = [_row("cpu_end_to_end_over_raw", 0.92, "2026-01-01T00:00:00Z", machine="2 x amx"),
            _row("cpu_end_to_end_over_raw", 0.67, "2026-01-02T00:00:00Z", machine="2 x plain"),
            _row("cpu_end_to_end_over_raw", 0.64, "2026-01-03T00:00:00Z", machine="2 x plain")]
    mine = [s for s in standings(rows) if s.target.metric == "cpu_end_to_end_over_raw"]
    assert [(s.latest["machine"], s.latest_met, s.met_runs, len(s.runs)) for s in mine] == [
        ("2 x plain", False, 0, 2), ("2 x amx", True, 1, 1)]
    lines = [x for x in render_targets(rows) if x.startswith("| cpu_end_to_end_over_raw")]
    assert len(lines) == 2 and "2 x plain" in lines[0] and "| 0.92 | yes |" in lines[1]


def test_one_machine_name_with_a_bf16_and_a_float32_learner_is_two_kinds():
    """Two 2-core AMD EPYCs, one with AVX512-BF16 (autocast auto resolved to bf16) and one without: the latest
    run on the second does not stand for the first."""
    rows = [_row("cpu_end_to_end_over_raw", 0.84, "2026-01-01T00:00:00Z", machine="2 x epyc", autocast="auto(bf16)"),
            _row("cpu_end_to_end_over_raw", 0.81, "2026-01-02T00:00:00Z", machine="2 x epyc", autocast="bf16"),
            _row("cpu_end_to_end_over_raw", 0.67, "2026-01-03T00:00:00Z", machine="2 x epyc", autocast="auto(off)"),
            _row("cpu_end_to_end_over_raw", 0.21, "2025-12-01T00:00:00Z", machine="2 x epyc", autocast="off")]
    mine = [s for s in standings(rows) if s.target.metric == "cpu_end_to_end_over_raw"]
    assert [(machine_kind(s.latest), s.latest_met, s.met_runs, len(s.runs)) for s in mine] == [
        ("2 x epyc, learner float32", False, 0, 2), ("2 x epyc, learner bf16", True, 2, 2)]
    lines = [x for x in render_targets(rows) if x.startswith("| cpu_end_to_end_over_raw")]
    assert "| 2 x epyc, learner float32 |" in lines[0] and "| 2 x epyc, learner bf16 |" in lines[1]
    assert machine_kind({"machine": "2 x epyc"}) == "2 x epyc"  # a row that did not record its arithmetic
    assert machine_kind({"machine": "h100", "device": "cuda", "autocast": "off"}) == "h100"


def test_the_client_alone_over_river_bounds_b_over_c_and_is_shown_beside_it():
    date = "2026-01-01T00:00:00Z"
    rows = [_row("raw_events_per_s", 30_000.0, date), _row("end_to_end_events_per_s", 24_000.0, date),
            _row("end_to_end_over_river", 12.0, date, baseline_accuracy=0.90),  # so c = 2,000 events/s
            _row("prequential_accuracy_prefix", 0.93, date),
            _row("raw_events_per_s", 99_000.0, "2026-01-02T00:00:00Z")]  # another run's: not this one's a
    s = _standing(rows, "end_to_end_over_river")
    assert s.latest_ceiling is not None and abs(s.latest_ceiling[0] - 15.0) < 1e-9
    line = next(x for x in render_targets(rows) if x.startswith("| end_to_end_over_river"))
    assert "| 15 (a/c, the client alone over river) |" in line
    # one run's rows are stamped as they are put, seconds apart: still one run; ten minutes on is another
    split = [_row("raw_events_per_s", 30_000.0, "2026-01-01T00:00:03Z"),
             _row("end_to_end_events_per_s", 24_000.0, "2026-01-01T00:00:04Z"),
             _row("end_to_end_over_river", 12.0, "2026-01-01T00:00:04Z", baseline_accuracy=0.90),
             _row("prequential_accuracy_prefix", 0.93, "2026-01-01T00:00:04Z"),
             _row("raw_events_per_s", 99_000.0, "2026-01-01T00:10:04Z")]
    s = _standing(split, "end_to_end_over_river")
    assert abs(s.latest_ceiling[0] - 15.0) < 1e-9 and s.latest_accuracy == (0.93, 0.90)
    alone = [_row("end_to_end_over_river", 12.0, date, baseline_accuracy=0.90)]  # no rates recorded with it
    assert _standing(alone, "end_to_end_over_river").ceiling_shown() == ""


def test_a_target_never_run_says_so_and_the_decay_target_is_two_sided():
    rows = [_row("rate_first_last_ratio", 1.15, "2026-01-01T00:00:00Z", records=500_000),
            _row("rate_first_last_ratio", 0.93, "2026-01-02T00:00:00Z", records=500_000)]
    assert _standing(rows, "rate_first_last_ratio").met_runs == 1
    lines = render_targets(rows)
    assert any(x.startswith("| h100_end_to_end_events_per_s | >= 150,000 | not measured yet") for x in lines)
    assert len([x for x in lines if x.startswith("| ") and "metric" not in x]) == len(TARGETS)


def test_record_appends_and_regenerates_results_md_with_the_targets_first(tmp_path):
    record("throughput", "cpu_end_to_end_over_raw", 0.81, "ratio", results_dir=tmp_path, machine="2 x test",
           command="test", **SETTING)
    assert [r["value"] for r in load(tmp_path)] == [0.81]
    text = (tmp_path / "RESULTS.md").read_text()
    assert text.index("## Targets") < text.index("## throughput")
    assert "| cpu_end_to_end_over_raw | >= 0.8 | 0.81 | yes |" in text
