"""The Dockerfiles agree with the rest of the deployment (no Docker daemon here, so no build): the command is the
systemd unit's and the StatefulSet's, the port and user match the pod spec, every file copied exists and is not
excluded by the Dockerfile's own .dockerignore, and every LIFELONG_* variable names a real config field.
"""

from __future__ import annotations

import fnmatch
import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from lifelong.config import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER", "WORKDIR",
    "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        out.append((keyword.upper(), args.strip()))
    assert not pending, f"{path.name} ends inside a continued line"
    return out


def final_stage(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [i for i, (keyword, _) in enumerate(items) if keyword == "FROM"]
    return items[starts[-1]:]


def env_vars(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in stage:
        if keyword == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(args))
    return env


def _ignored(rel: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes (directories match their contents)."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(rel, pattern) or rel.startswith(pattern + "/"):
            ignored = not negate
    return ignored


@pytest.fixture(scope="module")
def statefulset() -> dict:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed (it is not in Debian's archive: install it by hand)")
    out = subprocess.run(
        [kubectl, "kustomize", str(ROOT / "deploy" / "k8s" / "overlays" / "cpu")],
        capture_output=True, text=True, check=True, timeout=60,
    )
    (sts,) = [d for d in yaml.safe_load_all(out.stdout) if d and d["kind"] == "StatefulSet"]
    return sts


@pytest.mark.parametrize("flavour", ["cpu", "gpu"])
def test_dockerfile_matches_the_deployment(flavour: str, statefulset: dict) -> None:
    path = DOCKER / f"Dockerfile.{flavour}"
    items = instructions(path)
    assert {keyword for keyword, _ in items} <= INSTRUCTIONS
    stage = final_stage(items)
    last = {keyword: args for keyword, args in stage}
    entrypoint, cmd = json.loads(last["ENTRYPOINT"]), json.loads(last["CMD"])
    unit = (ROOT / "deploy" / "systemd" / "lifelong.service").read_text()
    (exec_start,) = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert entrypoint + cmd == shlex.split(exec_start.removeprefix("ExecStart="))
    pod = statefulset["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert cmd == container["args"]
    assert int(last["EXPOSE"]) == container["ports"][0]["containerPort"]
    assert last["USER"] == f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}"
    env = env_vars(stage)
    assert env["LIFELONG_DAEMON__DEVICE"] == ("cuda" if flavour == "gpu" else "cpu")
    for key in (k for k in env if k.startswith(ENV_PREFIX)):
        section, _, field = key[len(ENV_PREFIX):].lower().partition("__")
        assert field in Settings.model_fields[section].annotation.model_fields, key  # type: ignore[union-attr]


@pytest.mark.parametrize("flavour", ["cpu", "gpu"])
def test_copied_files_exist_and_reach_the_build_context(flavour: str) -> None:
    path = DOCKER / f"Dockerfile.{flavour}"
    patterns = [
        line.strip() for line in (DOCKER / f"Dockerfile.{flavour}.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copies = [shlex.split(args) for keyword, args in instructions(path) if keyword == "COPY"]
    sources = [src for parts in copies if not parts[0].startswith("--from") for src in parts[:-1]]
    assert "pyproject.toml" in sources and "lifelong" in sources
    for src in sources:
        assert (ROOT / src).exists(), src
        assert not _ignored(src, patterns), f"{src} is excluded by the .dockerignore"
    assert _ignored(".venv", patterns) and _ignored("state/checkpoints", patterns)


def test_gpu_image_is_cuda_and_installs_a_cuda_torch() -> None:
    text = (DOCKER / "Dockerfile.gpu").read_text()
    assert "nvidia/cuda:" in text and "download.pytorch.org/whl/cu" in text
    assert "download.pytorch.org/whl/cpu" in (DOCKER / "Dockerfile.cpu").read_text()
