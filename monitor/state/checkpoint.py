"""Atomic, versioned checkpoints of model state and the Kafka offsets that state reflects.

One file per replica, ``<state.dir>/checkpoints/<replica>.ckpt``: a numpy ``.npz`` archive
(no pickles) holding the window arrays, with a JSON ``meta`` entry for everything else.
It is written to a temporary file, fsynced, renamed over the old one, and the directory is
fsynced, so a crash leaves either the old or the new checkpoint, never a torn one.

The guarantee this gives (see the README): a checkpoint holds, for each partition, the next
offset to read and the state of every model those events fed. On assignment the consumer
seeks to the checkpoint's offsets, not to the group's committed ones, and offsets are
committed only after the checkpoint covering them is durable. Delivery stays at-least-once;
the statistics are effectively exactly-once: a crash replays exactly the events after the
checkpoint into exactly the state the checkpoint saved.

Several replicas sharing one state directory each write their own file; for every
partition the newest checkpoint that lists it wins. On revocation a replica also writes
``<replica>.handover.ckpt``, which its periodic checkpoints never overwrite: the state of
the partitions it gave up stays on disk for whichever replica is assigned them next, even
once its own file no longer lists them.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import stat
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from monitor.errors import CheckpointError
from monitor.model.state import ModelState

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "driftmon-checkpoint"
CHECKPOINT_VERSION = 1
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def partition_key(topic: str, partition: int) -> str:
    """``topic/partition``, the key offsets and model partitions use in checkpoints."""
    return f"{topic}/{partition}"


@dataclass
class Checkpoint:
    """One replica's checkpoint."""

    replica: str
    written_at: float
    offsets: dict[str, int]
    models: dict[str, ModelState]
    counters: dict[str, int] = field(default_factory=dict)  # replica-level, e.g. invalid events
    #: topic -> the broker's id of the topic the offsets belong to (a recreated topic
    #: gets a new one); topics whose id the broker did not give are absent.
    topic_ids: dict[str, str] = field(default_factory=dict)


def encode_checkpoint(ckpt: Checkpoint) -> bytes:
    """The archive bytes of a checkpoint."""
    arrays: dict[str, np.ndarray] = {}
    models_meta: list[dict[str, Any]] = []
    for i, state in enumerate(ckpt.models.values()):
        names: list[list[str]] = []
        for name, array in state.arrays.items():
            key = f"m{i}__{len(names)}"
            arrays[key] = np.ascontiguousarray(array)
            names.append([name, key])
        models_meta.append(
            {
                "model": state.model,
                "fingerprint": state.fingerprint,
                "partitions": state.partitions,
                "scalars": state.scalars,
                "arrays": names,
            }
        )
    meta = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "replica": ckpt.replica,
        "written_at": ckpt.written_at,
        "offsets": ckpt.offsets,
        "counters": ckpt.counters,
        "topic_ids": ckpt.topic_ids,
        "models": models_meta,
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


def decode_checkpoint(data: bytes, where: str = "checkpoint") -> Checkpoint:
    """Parse archive bytes; ``CheckpointError`` names what is wrong."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            stored = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise CheckpointError(f"{where}: not a driftmon checkpoint ({exc})") from None
    if "meta" not in stored:
        raise CheckpointError(f"{where}: no metadata entry")
    try:
        meta = json.loads(stored["meta"].tobytes().decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{where}: metadata is not JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{where}: not a driftmon checkpoint")
    if meta.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{where}: checkpoint version {meta.get('version')!r}, this driftmon reads "
            f"version {CHECKPOINT_VERSION}"
        )
    try:
        models: dict[str, ModelState] = {}
        for entry in meta["models"]:
            arrays = {name: stored[key] for name, key in entry["arrays"]}
            models[entry["model"]] = ModelState(
                model=str(entry["model"]),
                fingerprint=str(entry["fingerprint"]),
                partitions=[str(p) for p in entry["partitions"]],
                scalars=dict(entry["scalars"]),
                arrays=arrays,
            )
        return Checkpoint(
            replica=str(meta["replica"]),
            written_at=float(meta["written_at"]),
            offsets={str(k): int(v) for k, v in meta["offsets"].items()},
            models=models,
            counters={str(k): int(v) for k, v in meta.get("counters", {}).items()},
            topic_ids={str(k): str(v) for k, v in meta.get("topic_ids", {}).items()},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: malformed checkpoint ({exc!r})") from None


#: Largest checkpoint file read. A model's state is its windows' bin counts, captures and
#: pending joins, all bounded by config; a file past this is not ours, or was tampered with.
MAX_CHECKPOINT_BYTES = 1 << 30


def read_checkpoint_file(path: Path, limit: int = MAX_CHECKPOINT_BYTES) -> bytes:
    """The bytes of a checkpoint file that is a regular file of at most ``limit`` bytes.

    Opened without following a symlink and without blocking, so a FIFO or a link to
    ``/dev/zero`` planted at the path is refused at once instead of hanging start-up or
    reading forever. Raises ``CheckpointError``.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot open ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CheckpointError(f"{path}: not a regular file")
        if info.st_size > limit:
            raise CheckpointError(f"{path}: {info.st_size} bytes, more than the {limit} read")
        chunks: list[bytes] = []
        remaining = limit + 1  # one byte more tells a file that grew past the limit
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 24))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        if remaining <= 0:
            raise CheckpointError(f"{path}: grew past the {limit} bytes read")
        return b"".join(chunks)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class CheckpointStore:
    """The checkpoint files of one state directory: every read, write and delete of them.

    Nothing else opens these files; the recovery coordinator decides *what* to write and
    restore, this class decides how it reaches the disk.
    """

    def __init__(self, state_dir: Path, replica: str, on_corrupt: str = "fresh") -> None:
        self.directory = state_dir / "checkpoints"
        self.replica = _SAFE.sub("_", replica) or "replica"
        self.on_corrupt = on_corrupt

    @property
    def path(self) -> Path:
        return self.directory / f"{self.replica}.ckpt"

    @property
    def handover_path(self) -> Path:
        return self.directory / f"{self.replica}.handover.ckpt"

    def save(self, ckpt: Checkpoint, *, handover: bool = False) -> float:
        """Write atomically and durably; returns seconds spent. Raises ``CheckpointError``.

        ``handover`` writes the revocation copy (:attr:`handover_path`) instead.
        """
        started = time.perf_counter()
        data = encode_checkpoint(ckpt)
        path = self.handover_path if handover else self.path
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with tmp.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            _fsync_dir(self.directory)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise CheckpointError(
                f"cannot write checkpoint {path}: {exc.strerror or exc}"
            ) from None
        return time.perf_counter() - started

    def load_handover(self) -> Checkpoint | None:
        """This replica's handover copy; ``None`` if there is none or it cannot be read
        (:meth:`load_all` reports and moves aside what cannot be read)."""
        path = self.handover_path
        if not os.path.lexists(path):
            return None
        try:
            return decode_checkpoint(read_checkpoint_file(path), str(path))
        except CheckpointError:
            return None

    def delete_handover(self) -> None:
        """Remove this replica's handover copy (no error if there is none)."""
        self.handover_path.unlink(missing_ok=True)

    def load_all(self) -> list[Checkpoint]:
        """Every readable checkpoint, newest first.

        A corrupt or incompatible file is moved aside (``*.corrupt-<time>``) and skipped when
        ``on_corrupt`` is ``fresh``; with ``refuse`` it raises ``CheckpointError``.
        """
        if not self.directory.is_dir():
            return []
        found: list[Checkpoint] = []
        for path in sorted(self.directory.glob("*.ckpt")):
            try:
                found.append(decode_checkpoint(read_checkpoint_file(path), str(path)))
            except CheckpointError as exc:
                if self.on_corrupt == "refuse":
                    raise CheckpointError(
                        f"{exc}; move the file away or set state.on_corrupt: fresh"
                    ) from None
                aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
                try:
                    path.rename(aside)
                except OSError:
                    aside = path
                logger.error(
                    "checkpoint unreadable, starting without it",
                    extra={"error": str(exc), "moved_to": str(aside)},
                )
        found.sort(key=lambda c: c.written_at, reverse=True)
        return found
