"""`lifelong scrape` / `lifelong report` against the daemon's own exporter in-process: the numpy PromQL (rate,
histogram_quantile, increase) agrees with hand-computed values, gaps and late label children are handled, and
the PNG has every dashboard panel.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.exposition import generate_latest

from lifelong.metrics.exporter import DaemonMetrics, Health, MetricsServer
from lifelong.panels import PANELS
from lifelong.report import (
    EVALUATORS,
    default_window,
    drift_events,
    format_value,
    histogram_quantile,
    load_scrapes,
    rate,
    record_scrapes,
    render_report,
)

T0 = 1_700_000_000.0


def write_series(path: Path, steps: int = 40, down: range = range(0)) -> None:
    """A 1 Hz recording of a DaemonMetrics: 100 events/s of classes 0 and 1 with accuracy 0.75 and 0.5,
    a drift at step 20 (whose child is created then), and the target down during ``down``."""
    metrics = DaemonMetrics(max_classes=3, window=100, offset_skip_reasons=("already_learned", "no_record"),
                            topics=("events",))
    metrics.set_build_info("0", "naive", "cpu")
    labels = np.array([0, 1] * 50)
    correct = np.array([1, 1, 1, 0] * 25, dtype=bool)  # class 0: all right; class 1: every other one
    lines = []
    for step in range(steps):
        metrics.observe_batch(labels, correct, np.full(100, 0.3), train_seconds=0.003)
        metrics.checkpoint_time.set(T0 + step - step % 10)
        if step == 20:
            metrics.observe_drift("ADWIN", T0 + step)
        metrics.offsets_skipped.labels("no_record").inc(2)  # a commit marker every 50 events
        if step % 10 == 0:
            metrics.broker_errors.inc()
        if step == 12:
            metrics.topic_recreations.labels("events").inc()
        record = {"t": T0 + step, "url": "http://127.0.0.1:9108/metrics"}
        if step in down:
            lines.append({**record, "up": 0, "error": "connection refused"})
        else:
            lines.append({**record, "up": 1, "text": generate_latest(metrics.registry).decode()})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_rate_handles_resets_and_gaps() -> None:
    times = np.arange(10.0)
    values = np.array([0, 10, 20, np.nan, 40, 50, 5, 15, 25, 35], dtype=float)  # reset after 50
    out = rate(values, times, window=2.0)
    assert np.isnan(out[0]) and np.isnan(out[3])
    assert out[2] == pytest.approx(10.0)
    assert out[4] == pytest.approx(10.0)  # 20 -> 40 over 2 s across the gap
    assert out[6] == pytest.approx((5 + 50 - 40) / 2)  # reset: the counter restarted from 0
    assert out[9] == pytest.approx(10.0)


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    # 100 observations/s: 50 in (0, 0.1], 40 in (0.1, 0.2], 10 in (0.2, +Inf)
    buckets = {0.1: np.array([50.0]), 0.2: np.array([90.0]), float("inf"): np.array([100.0])}
    assert histogram_quantile(0.5, buckets)[0] == pytest.approx(0.1)
    assert histogram_quantile(0.7, buckets)[0] == pytest.approx(0.15)
    assert histogram_quantile(0.99, buckets)[0] == pytest.approx(0.2)  # in +Inf: the highest finite bound
    assert np.isnan(histogram_quantile(0.5, {0.1: np.array([0.0]), float("inf"): np.array([0.0])})[0])


def test_recording_evaluates_the_panels(tmp_path: Path) -> None:
    path = tmp_path / "scrapes.jsonl"
    write_series(path, down=range(30, 33))
    rec = load_scrapes(path)
    rec.target = {"job": "lifelong", "instance": "127.0.0.1:9108"}
    assert len(rec.times) == 40 and rec.up.sum() == 37 and rec.interval == pytest.approx(1.0)
    window = 5.0
    per_class = {line.labels["class"]: line.values for line in EVALUATORS["class_accuracy"](rec, window)}
    assert np.nanmean(per_class["0"][5:]) == pytest.approx(1.0)
    assert np.nanmean(per_class["1"][5:]) == pytest.approx(0.5)
    assert np.isnan(per_class["2"]).all()  # never predicted: no line, as 0/0 in PromQL
    (events,) = EVALUATORS["events_now"](rec, window)
    assert events.values[-1] == pytest.approx(100.0)
    assert np.isnan(events.values[31])  # target down
    # Every step took 3 ms: all in the (2.5 ms, 5 ms] bucket, so quantile q interpolates to 2.5 + 2.5 q ms.
    latency = EVALUATORS["train_latency"](rec, window)
    assert [float(np.nanmedian(line.values)) for line in latency] == pytest.approx([0.00375, 0.00475, 0.004975])
    (age,) = EVALUATORS["checkpoint_now"](rec, window)
    assert age.values[-1] == pytest.approx(9.0)
    # The drift child appears at step 20 already at 1: counted (it was 0 before), once.
    (drifts,) = EVALUATORS["drifts_total"](rec, window)
    assert drifts.values[-1] == 1
    assert drift_events(rec) == [(T0 + 20, "ADWIN")]
    skipped = {line.labels["reason"]: line.values for line in EVALUATORS["offsets_skipped"](rec, window)}
    assert np.nanmedian(skipped["no_record"]) == pytest.approx(2.0) and np.nanmax(skipped["already_learned"]) == 0
    errors, restarts = EVALUATORS["client_errors"](rec, window)  # one line per query, in the panel's order
    assert (errors.query, restarts.query) == (0, 1)
    assert np.nanmax(errors.values) == pytest.approx(0.2) and np.nanmax(restarts.values) == 0  # 1 in a 5 s window
    recreated, omitted = EVALUATORS["stream_incidents"](rec, window)  # increase over the window: counts, not rates
    assert (recreated.labels["topic"], recreated.query, omitted.query) == ("events", 0, 1)
    assert np.nanmax(recreated.values) == pytest.approx(1.0) and np.nanmax(omitted.values) == 0
    assert np.nanargmax(recreated.values) >= 12 and recreated.values[11] == 0


def test_every_panel_has_an_evaluator() -> None:
    assert set(EVALUATORS) == {panel.key for panel in PANELS}


def test_default_window_follows_the_recording() -> None:
    class Fake:
        interval, duration = 1.0, 60.0

    assert default_window(Fake()) == 4.0  # type: ignore[arg-type]
    Fake.duration = 3 * 3600
    assert default_window(Fake()) == 300.0  # type: ignore[arg-type]


def test_format_value() -> None:
    assert format_value(0.8734, "percentunit") == "87.3%"
    assert format_value(12_345, "ops") == "12.3k/s"
    assert format_value(0.004, "s") == "4 ms"
    assert format_value(0.00375, "s") == "3.75 ms"  # train steps of a few ms stay apart
    assert format_value(600, "s") == "10.0 min"
    assert format_value(float("nan"), "short") == "no data"


def test_render_png(tmp_path: Path) -> None:
    path = tmp_path / "scrapes.jsonl"
    write_series(path)
    rec = load_scrapes(path)
    out = render_report(rec, tmp_path / "report.png")
    from PIL import Image

    with Image.open(out) as image:
        assert image.format == "PNG" and image.size[0] >= 1500 and image.size[1] >= 1500
        assert len(image.convert("RGB").resize((200, 200)).getcolors(200 * 200)) > 50  # not a blank canvas


def test_record_scrapes_from_the_exporter(tmp_path: Path) -> None:
    metrics = DaemonMetrics(max_classes=2)
    server = MetricsServer(metrics, Health(timeout_s=60), host="127.0.0.1", port=0).start()
    out = tmp_path / "scrapes.jsonl"
    try:
        count = record_scrapes(server.url + "/metrics", out, interval=0.05, duration=0.3)
    finally:
        server.stop()
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == count >= 3
    assert all(line["up"] == 1 and "lifelong_events_total" in line["text"] for line in lines)


def test_record_scrapes_stops_when_the_daemon_is_gone(tmp_path: Path) -> None:
    server = MetricsServer(DaemonMetrics(max_classes=2), Health(timeout_s=60), host="127.0.0.1", port=0).start()
    out = tmp_path / "scrapes.jsonl"
    stop = threading.Event()
    result: list[int] = []
    said: list[str] = []
    recorder = threading.Thread(target=lambda: result.append(
        record_scrapes(server.url + "/metrics", out, interval=0.05, stop=stop, stop_after_down=0.3,
                       on_change=said.append)))
    recorder.start()
    try:
        threading.Event().wait(0.3)
        server.stop()  # the daemon exits: the recorder notices and ends on its own
        recorder.join(timeout=5)
        stopped_by_itself = not recorder.is_alive()
    finally:
        stop.set()
        recorder.join()
    assert stopped_by_itself
    up = [json.loads(line)["up"] for line in out.read_text().splitlines()]
    assert len(up) == result[0] and up[0] == 1 and up[-1] == 0
    assert up == sorted(up, reverse=True)  # answered, then gone
    assert len(said) == 2 and said[0].endswith("answers") and "does not answer" in said[1]  # once each


def test_a_file_that_is_not_a_recording_or_recorded_nothing_is_refused_by_line(tmp_path: Path) -> None:
    from lifelong.report import load_scrapes

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"t": 1, "up": 0}\n{"up": 1, "text": ""}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not a line written by `lifelong scrape` \(no 't'\)"):
        load_scrapes(bad)
    down = tmp_path / "down.jsonl"
    down.write_text('{"t": 1, "url": "http://h:1/metrics", "up": 0}\n{"t": 2, "up": 0}\n')
    with pytest.raises(ValueError, match="none of its 2 scrapes of http://h:1/metrics got an answer"):
        load_scrapes(down)


def test_a_checkpoint_stamped_while_the_scrape_was_answered_is_no_negative_age() -> None:
    """The scrape's clock is read before its request; an idle daemon stamps 'durable now' at any moment, so the
    stamp can be a millisecond after it (seen in tests/integration/test_deploy_daemon.py)."""
    from lifelong.report import Recording

    times = np.array([100.0, 101.0, 102.0])
    stamps = {(): np.array([99.5, 101.001, 101.5])}
    rec = Recording(times=times, up=np.ones(3, np.int8),
                    values={"lifelong_checkpoint_timestamp_seconds": stamps})
    (age,) = EVALUATORS["checkpoint_now"](rec, 1.0)
    assert age.values.tolist() == pytest.approx([0.5, 0.0, 0.5])
