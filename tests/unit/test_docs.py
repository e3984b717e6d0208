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
