"""The dashboard's panels, defined once for both renderers: Grafana (deploy/grafana/build_dashboard.py turns them
into a dashboard JSON model) and ``lifelong report`` (which draws the same panels as a PNG from recorded scrapes,
so the picture can be looked at without Grafana).

Each panel carries PromQL for Grafana; the report computes the same quantity from the scrape series (rates from
the counters, quantiles from the histogram buckets). ``metric_names`` pulls metric identifiers out of PromQL so the
tests can check that every name the dashboard and the alert rules use is really exported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

#: Label filter on every query: the dashboard's job and instance variables (multi-select, "All" by default).
SEL = 'job=~"$job", instance=~"$instance"'
RATE = "$__rate_interval"


@dataclass(frozen=True)
class Query:
    """One PromQL target; ``legend`` is Grafana's legendFormat (``{{label}}`` placeholders)."""

    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    """A dashboard panel. ``key`` names it for the report's evaluator; ``grid`` is (x, y, w, h) on Grafana's
    24-column grid, also used for the report's layout."""

    key: str
    title: str
    kind: Literal["stat", "timeseries"]
    unit: str
    queries: tuple[Query, ...]
    grid: tuple[int, int, int, int]
    description: str = ""
    min: float | None = None
    max: float | None = None
    stacked: bool = False
    #: Colour steps (colour, from value; None = from -inf), as in Grafana's absolute thresholds.
    thresholds: tuple[tuple[str, float | None], ...] = (("green", None),)


PANELS: tuple[Panel, ...] = (
    # Row 0: the numbers at a glance.
    Panel("accuracy_now", "Accuracy (last window)", "stat", "percentunit",
          (Query(f"avg(lifelong_accuracy_ratio{{{SEL}}})"),), (0, 0, 4, 4),
          "Prequential accuracy over the last metrics.window events: each event is predicted before it is "
          "learned.", 0, 1, thresholds=(("red", None), ("orange", 0.5), ("green", 0.8))),
    Panel("events_now", "Events/s", "stat", "ops",
          (Query(f"sum(rate(lifelong_events_total{{{SEL}}}[{RATE}]))"),), (4, 0, 4, 4),
          "Records handled per second, trained and dead-lettered."),
    Panel("lag_now", "Consumer lag", "stat", "short",
          (Query(f"sum(lifelong_consumer_lag_messages{{{SEL}}})"),), (8, 0, 4, 4),
          "Records behind the end of the assigned partitions.",
          thresholds=(("green", None), ("orange", 10_000))),  # 10k: alert LifelongConsumerLagGrowing
    Panel("checkpoint_now", "Checkpoint age", "stat", "s",
          (Query(f"time() - max(lifelong_checkpoint_timestamp_seconds{{{SEL}}} > 0)"),), (12, 0, 4, 4),
          "Seconds since the daemon's state was last durable (a checkpoint written, or found to hold all it "
          "learned); offsets are committed only up to it.",
          thresholds=(("green", None), ("orange", 300), ("red", 900))),  # 900 s: LifelongCheckpointStale
    Panel("drifts_total", "Drift detections", "stat", "short",
          (Query(f"sum(increase(lifelong_drift_detected_total{{{SEL}}}[$__range]))"),), (16, 0, 4, 4),
          "Drifts detected in the selected time range."),
    Panel("ready_now", "Ready", "stat", "short",
          (Query(f"min(lifelong_ready{{{SEL}}})"),), (20, 0, 4, 4),
          "1 when the model is loaded and partitions are assigned (/readyz).", 0, 1,
          thresholds=(("red", None), ("green", 1))),
    # Accuracy.
    Panel("class_accuracy", "Per-class accuracy (from counters)", "timeseries", "percentunit",
          (Query(f"instance_class:lifelong_accuracy:ratio_rate5m{{{SEL}}}", "class {{class}}"),), (0, 4, 12, 9),
          "correct / predictions per class over 5 minutes (recording rule): forgetting shows as an old class "
          "falling while new ones are learned.", 0, 1),
    Panel("accuracy", "Overall accuracy", "timeseries", "percentunit",
          (Query(f"lifelong_accuracy_ratio{{{SEL}}}", "last window {{instance}}"),
           Query(f"instance:lifelong_accuracy:ratio_rate5m{{{SEL}}}", "from counters {{instance}}")),
          (12, 4, 12, 9), "The windowed gauge and the counter-derived 5-minute rate.", 0, 1),
    # Throughput and lag.
    Panel("events_rate", "Events/s by outcome", "timeseries", "ops",
          (Query(f"sum by (outcome) (rate(lifelong_events_total{{{SEL}}}[{RATE}]))", "{{outcome}}"),),
          (0, 13, 12, 8), "Records per second: trained or sent to the dead-letter topic."),
    Panel("lag", "Consumer lag by partition", "timeseries", "short",
          (Query(f"sum by (topic, partition) (lifelong_consumer_lag_messages{{{SEL}}})",
                 "{{topic}}/{{partition}}"),), (12, 13, 12, 8), "Records behind each partition's end."),
    # Latency and bad input.
    Panel("train_latency", "Train-step latency", "timeseries", "s",
          tuple(Query(f"histogram_quantile({q}, sum by (le) "
                      f"(rate(lifelong_train_step_seconds_bucket{{{SEL}}}[{RATE}])))", f"p{round(q * 100)}")
                for q in (0.5, 0.9, 0.99)), (0, 21, 12, 8),
          "Quantiles of the wall time to train on one micro-batch."),
    Panel("dead_letters", "Dead letters by reason", "timeseries", "ops",
          (Query(f"sum by (reason) (rate(lifelong_dead_letter_total{{{SEL}}}[{RATE}]))", "{{reason}}"),),
          (12, 21, 12, 8), "Records per second sent to <topic>.dlq, by validation reason."),
    # Memory and durability.
    Panel("replay", "Replay memory per class", "timeseries", "short",
          (Query(f"sum by (class) (lifelong_replay_buffer_samples{{{SEL}}})", "class {{class}}"),),
          (0, 29, 12, 8), "Samples each class holds in the replay memory.", 0, None, True),
    Panel("checkpoint_age", "Checkpoint age", "timeseries", "s",
          (Query(f"time() - (lifelong_checkpoint_timestamp_seconds{{{SEL}}} > 0)", "{{instance}}"),),
          (12, 29, 12, 8), "Seconds since the last durable checkpoint.", 0),
    # Learning health.
    Panel("loss", "Loss (last window)", "timeseries", "none",
          (Query(f"lifelong_loss{{{SEL}}}", "{{instance}}"),), (0, 37, 12, 8),
          "Mean prequential cross-entropy over the last window.", 0),
    Panel("skipped", "Skipped train steps", "timeseries", "ops",
          (Query(f"sum by (reason) (rate(lifelong_skipped_steps_total{{{SEL}}}[{RATE}]))", "{{reason}}"),),
          (12, 37, 12, 8), "Steps skipped for a non-finite loss or a CUDA out-of-memory, per second.", 0),
    # The stream and the client.
    Panel("offsets_skipped", "Offsets not learned", "timeseries", "ops",
          (Query(f"sum by (reason) (rate(lifelong_offsets_skipped_total{{{SEL}}}[{RATE}]))", "{{reason}}"),),
          (0, 45, 12, 8), "Offsets fetched but not learned, per second: already_learned (fetched again below the "
          "daemon's position: a restart, a rebalance, a log that went back), no_record (transaction markers, "
          "compaction) or deleted (removed from the log by retention before they were learned: lost).", 0),
    Panel("client_errors", "Broker errors and fetcher restarts", "timeseries", "ops",
          (Query(f"sum(rate(lifelong_broker_errors_total{{{SEL}}}[{RATE}]))", "broker errors"),
           Query(f"sum(rate(lifelong_fetcher_restarts_total{{{SEL}}}[{RATE}]))", "fetcher restarts")),
          (12, 45, 12, 8), "Kafka errors survived by retrying, and fetch processes or threads found dead and "
          "rebuilt at the learned positions, per second.", 0),
    Panel("stream_incidents", "Topics re-created, dead letters without payload", "timeseries", "short",
          (Query(f"sum by (topic) (increase(lifelong_topic_recreations_total{{{SEL}}}[{RATE}]))",
                 "re-created: {{topic}}"),
           Query(f"sum(increase(lifelong_dead_letter_payloads_omitted_total{{{SEL}}}[{RATE}]))",
                 "dead letters without payload")),
          (0, 53, 24, 7), "Topics found deleted and created again (another topic ID: the new log is learned from "
          "its start), and dead letters sent without the record's key, value and headers because the record was "
          "too large for the dead-letter topic (it stays at its source offset), per interval.", 0),
)

#: Drift detections, drawn as annotations (vertical markers) on every time series.
DRIFT_ANNOTATION = Query(
    f"sum by (instance, detector) (changes(lifelong_drift_detected_total{{{SEL}}}[$__interval])) > 0",
    "drift: {{detector}} on {{instance}}",
)

# PromQL words that look like identifiers but are not metric names (aggregations may be followed by a grouping
# clause instead of "(", so they are listed too).
_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset",
    "inf", "nan", "atan2", "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_IDENT = re.compile(r"(?<![\w.:$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """Metric names used by a PromQL expression (functions, keywords, label names and durations excluded).

    >>> sorted(metric_names('sum by (le) (rate(a_bucket{job=~"$job"}[5m])) / on (job) b:c:d > 0.5 and up'))
    ['a_bucket', 'b:c:d', 'up']
    """
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("{}", text)
    text = _RANGE.sub("[]", text)
    text = _GROUPING.sub(r"\1 ()", text)
    text = _VARIABLE.sub("", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue  # a function or aggregation (followed by "("), or a keyword
        names.add(name)
    return names


def panel_metric_names() -> set[str]:
    """Every metric name the panels and the drift annotation read."""
    names: set[str] = set(metric_names(DRIFT_ANNOTATION.expr))
    for panel in PANELS:
        for query in panel.queries:
            names |= metric_names(query.expr)
    return names


_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
}


def exposed_names(text: str) -> set[str]:
    """Series names a Prometheus text exposition provides: every sample's name, plus the names a declared
    family will have once it gets its first labelled child (a ``# TYPE`` line with no sample yet).

    >>> sorted(exposed_names("# TYPE x counter\\n# TYPE g gauge\\ng 1\\n"))
    ['g', 'x_created', 'x_total']
    """
    from prometheus_client.parser import text_string_to_metric_families

    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names |= {sample.name for sample in family.samples}
        names |= {family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",))}
    return names
