"""Durable checkpoints: the learner's whole state plus the Kafka offsets it covers, written atomically.

File layout: ``MAGIC`` line, the payload's SHA-256 in hex, a newline, then the ``torch.save`` payload. Writes go to a
temporary file that is fsynced and renamed over the final name (and the directory fsynced), so a crash leaves either
the old or the new checkpoint, never half of one. Loading verifies the checksum and uses ``weights_only=True``: a
checkpoint can hold tensors, numbers, strings, lists and dicts, never arbitrary pickled objects. A corrupt or
incompatible file is refused with a clear message and the next older one is tried.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import logging
import os
import re
import socket
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

MAGIC = b"LIFELONG-CKPT-1\n"
FORMAT_VERSION = 1
NAME = re.compile(r"^ckpt-(\d{12})\.pt$")


class CheckpointError(Exception):
    """A checkpoint file that cannot be used; the message says why."""


class ForeignCheckpoint(CheckpointError):
    """A sound checkpoint of a learner of another shape (model, replay memory or strategies: Settings.digest)."""


def to_safe(value: Any) -> Any:
    """Numpy arrays become tensors so the payload loads with ``weights_only=True``."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {k: to_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_safe(v) for v in value]
    return value


def offsets_to_state(offsets: Mapping[tuple[str, int], int]) -> dict[str, int]:
    return {f"{topic}\x00{partition}": int(offset) for (topic, partition), offset in offsets.items()}


def offsets_from_state(state: Mapping[str, int]) -> dict[tuple[str, int], int]:
    out = {}
    for key, offset in state.items():
        topic, partition = key.rsplit("\x00", 1)
        out[(topic, int(partition))] = int(offset)
    return out


class DirectoryInUse(CheckpointError):
    """Another daemon holds the checkpoint folder."""


class DirectoryLock:
    """One daemon per checkpoint folder, for its whole life. Two daemons writing one folder would number their
    checkpoints alike, overwrite each other's and resume from each other's model and offsets.

    An ``flock`` on ``.lock`` in the folder: the kernel releases it when the process ends, ``kill -9`` included,
    so a crash never leaves a stale lock. The file says who holds it. Reading checkpoints needs no lock."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._file = (self.directory / ".lock").open("a+")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "pid unknown"
            self._file.close()
            raise DirectoryInUse(f"{self.directory} is in use by another daemon ({holder}): give each daemon a "
                                 "checkpoint.dir of its own") from None
        except OSError as exc:  # a filesystem without locks (some network filesystems)
            log.warning("checkpoint.dir %s cannot be locked (%s): make sure no other daemon writes to it",
                        self.directory, exc.strerror or exc)
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        self._file.flush()

    def release(self) -> None:
        self._file.close()  # closing the file releases the lock


@dataclass
class Checkpoint:
    path: Path
    sequence: int
    state: dict[str, Any]

    @property
    def offsets(self) -> dict[tuple[str, int], int]:
        return offsets_from_state(self.state.get("offsets", {}))


class CheckpointStore:
    """A folder of numbered checkpoints; the newest ``keep`` are kept."""

    def __init__(self, directory: Path, keep: int = 3, config_digest: str = "", also_accept: tuple[str, ...] = ()):
        self.directory = Path(directory)
        self.keep = keep
        self.config_digest = config_digest  # written into every checkpoint; read ones must carry it
        self.accepted = {config_digest, *also_accept}  # or one of these (an older digest of the same config)
        self.refused: list[CheckpointError] = []  # what the last latest() skipped, and why
        self.directory.mkdir(parents=True, exist_ok=True)
        # a folder that cannot take a file must fail here, at start, not at the first checkpoint
        with tempfile.NamedTemporaryFile(dir=self.directory, prefix=".probe-"):
            pass

    def paths(self) -> list[tuple[int, Path]]:
        """Existing checkpoints, newest first."""
        found = []
        for path in self.directory.iterdir():
            match = NAME.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
        return sorted(found, reverse=True)

    def save(self, state: dict[str, Any], offsets: Mapping[tuple[str, int], int]) -> Path:
        """Write a checkpoint durably; returns its path once it is on disk."""
        existing = self.paths()
        sequence = existing[0][0] + 1 if existing else 1
        payload = {
            "format": FORMAT_VERSION,
            "config_digest": self.config_digest,
            "offsets": offsets_to_state(offsets),
            **to_safe(state),
        }
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        data = buffer.getvalue()
        digest = hashlib.sha256(data).hexdigest().encode()
        final = self.directory / f"ckpt-{sequence:012d}.pt"
        fd, tmp = tempfile.mkstemp(prefix=".ckpt-", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(MAGIC + digest + b"\n")
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        for _, old in self.paths()[self.keep :]:
            old.unlink(missing_ok=True)
        return final

    def read(self, path: Path) -> dict[str, Any]:
        """Read and verify one file; raises CheckpointError with the reason."""
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise CheckpointError(f"{path.name}: cannot read ({exc.strerror})") from exc
        if not raw.startswith(MAGIC):
            raise CheckpointError(f"{path.name}: not a lifelong checkpoint (bad magic)")
        header_end = raw.find(b"\n", len(MAGIC))
        expected = raw[len(MAGIC) : header_end]
        data = raw[header_end + 1 :]
        if hashlib.sha256(data).hexdigest().encode() != expected:
            raise CheckpointError(f"{path.name}: checksum mismatch (truncated or corrupted)")
        try:
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling refusal is a refusal
            raise CheckpointError(f"{path.name}: refused by the safe loader ({exc})") from exc
        if state.get("format") != FORMAT_VERSION:
            raise CheckpointError(f"{path.name}: format {state.get('format')} is not {FORMAT_VERSION}")
        if self.config_digest and state.get("config_digest") not in self.accepted:
            raise ForeignCheckpoint(
                f"{path.name}: written by an incompatible config (digest {state.get('config_digest')}, "
                f"this config {self.config_digest}: the model, the replay memory or the strategies changed)"
            )
        return state

    def latest(self) -> Checkpoint | None:
        """The newest checkpoint that verifies; bad ones are logged, skipped and kept in ``refused``."""
        self.refused = []
        for sequence, path in self.paths():
            try:
                return Checkpoint(path, sequence, self.read(path))
            except CheckpointError as exc:
                self.refused.append(exc)
                log.error("checkpoint refused: %s; trying the one before it", exc)
        return None

    @property
    def refused_foreign(self) -> bool:
        """Whether :meth:`latest` refused a checkpoint of a learner of another shape (the folder may belong to
        another model)."""
        return any(isinstance(exc, ForeignCheckpoint) for exc in self.refused)
