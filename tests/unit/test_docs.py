"""The README's configuration reference is generated from the config models and must not fall behind them."""

from pathlib import Path

from lifelong.config_reference import BEGIN, END, render

ROOT = Path(__file__).resolve().parents[2]


def test_readme_config_reference_is_current():
    text = (ROOT / "README.md").read_text()
    block = text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip()
    assert block == render().strip(), "run: python -m lifelong.config_reference --write README.md"


def test_reference_lists_every_key():
    from lifelong.config import Settings

    reference = render()
    for section, field in Settings.model_fields.items():
        model = field.annotation
        for key in getattr(model, "model_fields", {}):
            assert f"`{key}`" in reference, f"{section}.{key} missing from the reference"


def test_readme_metrics_table_names_every_exported_metric():
    """The README's metrics table and the daemon's registry list the same series families."""
    import re

    from lifelong.daemon.position_guard import SKIP_REASONS
    from lifelong.metrics.exporter import DaemonMetrics

    text = (ROOT / "README.md").read_text()
    table = text[text.index("## Metrics"):].split("\n\n", 2)[1]
    documented = set(re.findall(r"`(lifelong_\w+)`", table))
    suffix = {"counter": "_total", "info": "_info"}
    metrics = DaemonMetrics(3, offset_skip_reasons=SKIP_REASONS)
    exported = {family.name + suffix.get(family.type, "") for family in metrics.registry.collect()}
    assert documented == exported, f"README only: {documented - exported}; registry only: {exported - documented}"
