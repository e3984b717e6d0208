"""The systemd unit passes `systemd-analyze verify` and says what the daemon relies on.

`systemd-analyze verify` exits 0 even when it reports problems, so a check fails on any stderr output. It also
requires ExecStart's binary to exist: the shipped unit points at /opt/lifelong/.venv (the install path), so the
verify-clean test swaps exactly that one path for this checkout's entry point and asserts nothing else changed;
a second test runs verify on the unit as shipped and asserts the missing binary is the *only* complaint.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lifelong.config import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "systemd" / "lifelong.service"
ENV_EXAMPLE = ROOT / "deploy" / "systemd" / "lifelong.env"
INSTALLED_BIN = "/opt/lifelong/.venv/bin/lifelong"


def _systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze not installed and scripts/install-check-tools.sh could not install it")
    return tool


def _verify(unit: Path) -> subprocess.CompletedProcess[str]:
    # --man=no: do not look up Documentation= man pages (absent in minimal images).
    return subprocess.run(
        [_systemd_analyze(), "verify", "--man=no", str(unit)],
        capture_output=True, text=True, timeout=60, cwd=unit.parent,
    )


def _entry_point(tmp_path: Path) -> str:
    """This checkout's `lifelong` console script, or a shim that runs exactly what it would run."""
    script = Path(sys.prefix) / "bin" / "lifelong"
    if script.exists() and os.access(script, os.X_OK):
        return str(script)
    shim = tmp_path / "bin" / "lifelong"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -c "from lifelong.cli import app; app()" "$@"\n')
    shim.chmod(0o755)
    return str(shim)


def test_unit_verifies_clean_at_its_install_path(tmp_path: Path) -> None:
    text = UNIT.read_text()
    local = text.replace(INSTALLED_BIN, _entry_point(tmp_path))
    changed = [(a, b) for a, b in zip(text.splitlines(), local.splitlines(), strict=True) if a != b]
    assert len(changed) == 1 and changed[0][0].startswith("ExecStart=")  # only the binary path moved
    unit = tmp_path / "lifelong.service"
    unit.write_text(local)
    result = _verify(unit)
    assert result.stderr.strip() == "", result.stderr
    assert result.returncode == 0


def test_shipped_unit_only_lacks_the_installed_binary() -> None:
    result = _verify(UNIT)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if Path(INSTALLED_BIN).exists():  # a host with the real install: the shipped unit must verify clean
        assert not lines, result.stderr
        return
    assert lines, "verify should report the missing /opt/lifelong binary on a machine without the install"
    assert all(INSTALLED_BIN in line for line in lines), result.stderr


def test_verify_reports_a_bad_directive(tmp_path: Path) -> None:
    """Negative control: the stderr check catches what verify's exit status would hide."""
    unit = tmp_path / "broken.service"
    unit.write_text(UNIT.read_text().replace(INSTALLED_BIN, "/bin/true").replace("Type=notify", "Typo=notify"))
    assert "Typo" in _verify(unit).stderr


def _directives(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


def test_unit_has_the_lifecycle_and_hardening_the_daemon_expects() -> None:
    d = _directives(UNIT.read_text())
    expected = {
        "Type": "notify", "NotifyAccess": "main", "Restart": "on-failure", "StateDirectory": "lifelong",
        "ProtectSystem": "strict", "ProtectHome": "yes", "NoNewPrivileges": "yes", "PrivateTmp": "yes",
        "DynamicUser": "yes", "EnvironmentFile": "-/etc/lifelong/lifelong.env",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "ExecStart": f"{INSTALLED_BIN} run --config /etc/lifelong/config.yaml",
    }
    for key, value in expected.items():
        assert d.get(key) == [value], key
    assert int(d["WatchdogSec"][0]) > 0
    assert "PrivateDevices" not in d  # hides /dev/nvidia*: see the unit's comment
    env = dict(item.split("=", 1) for value in d["Environment"] for item in value.split())
    assert env["LIFELONG_CHECKPOINT__DIR"] == "%S/lifelong/checkpoints"  # inside StateDirectory


def _field_exists(path: list[str]) -> bool:
    model: type = Settings
    for part in path:
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return False
        model = fields[part].annotation  # type: ignore[assignment]
    return True


def test_env_example_names_real_settings() -> None:
    """Every LIFELONG_* key in the example (commented or not) maps to a config field: typos would be ignored."""
    keys = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.lstrip("# ").strip()
        if line.startswith(ENV_PREFIX) and "=" in line:
            keys.append(line.split("=", 1)[0])
    assert len(keys) >= 10
    for key in keys:
        assert _field_exists(key[len(ENV_PREFIX):].lower().split("__")), key
