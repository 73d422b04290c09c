"""Checkpoint files: round trip, atomicity, corrupt and incompatible files, model state."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from monitor.config import validate_config
from monitor.errors import CheckpointError
from monitor.model.state import ModelState
from monitor.pipeline import Pipeline
from monitor.state.checkpoint import (
    Checkpoint,
    CheckpointStore,
    decode_checkpoint,
    encode_checkpoint,
    read_checkpoint_file,
)
from monitor.stats import FeatureKind, build_profile


def sample() -> Checkpoint:
    state = ModelState(
        model="fraud",
        fingerprint="abc",
        partitions=["t/0"],
        scalars={"events_seen": 10, "alert": {"state": 2}, "window.current": 3},
        arrays={"window.num": np.arange(12, dtype=np.int64).reshape(3, 4)},
    )
    return Checkpoint(
        replica="r1",
        written_at=123.5,
        offsets={"t/0": 42},
        models={"fraud": state},
        counters={"not_json": 2},
    )


def test_round_trip_keeps_every_value_and_array() -> None:
    back = decode_checkpoint(encode_checkpoint(sample()))
    assert back.replica == "r1" and back.written_at == 123.5
    assert back.offsets == {"t/0": 42} and back.counters == {"not_json": 2}
    state = back.models["fraud"]
    assert state.scalars == sample().models["fraud"].scalars
    np.testing.assert_array_equal(state.arrays["window.num"], np.arange(12).reshape(3, 4))
    assert state.arrays["window.num"].dtype == np.int64


def test_save_is_atomic_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "replica/1 with spaces")
    store.save(sample())
    files = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert files == ["replica_1_with_spaces.ckpt"]
    assert store.load_all()[0].offsets == {"t/0": 42}


@pytest.mark.parametrize(
    "content",
    [b"", b"garbage", encode_checkpoint(sample())[:100]],
    ids=["empty", "garbage", "truncated"],
)
def test_a_corrupt_checkpoint_is_moved_aside_and_skipped(tmp_path: Path, content: bytes) -> None:
    store = CheckpointStore(tmp_path, "r1")
    store.directory.mkdir(parents=True)
    store.path.write_bytes(content)
    assert store.load_all() == []
    names = [p.name for p in store.directory.iterdir()]
    assert len(names) == 1 and names[0].startswith("r1.ckpt.corrupt-")


def test_refuse_raises_a_clear_error_and_keeps_the_file(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "r1", on_corrupt="refuse")
    store.directory.mkdir(parents=True)
    store.path.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="on_corrupt: fresh"):
        store.load_all()
    assert store.path.exists()


def test_another_version_is_incompatible(monkeypatch: pytest.MonkeyPatch) -> None:
    import monitor.state.checkpoint as checkpoint

    monkeypatch.setattr(checkpoint, "CHECKPOINT_VERSION", 9)
    data = encode_checkpoint(sample())
    monkeypatch.undo()
    with pytest.raises(CheckpointError, match="version 9"):
        decode_checkpoint(data)


def test_an_unwritable_path_raises_checkpoint_error(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state directory should be")
    with pytest.raises(CheckpointError, match="cannot write checkpoint"):
        CheckpointStore(blocker, "r1").save(sample())


CONFIG = {
    "kafka": {"bootstrap_servers": "127.0.0.1:9", "topics": ["t"]},
    "models": {
        "m": {
            "reference": {"capture_events": 200},
            "window": {"events": 300, "slide": 100},
            "features": {"x": {"type": "numeric"}, "c": {"type": "categorical"}},
        }
    },
}


def payloads(n: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=n)
    cs = rng.choice(["a", "b", "c"], size=n)
    return [
        f'{{"model": "m", "ts": {1.7e9 + i}, "features": {{"x": {x:.6f}, "c": "{c}"}}}}'.encode()
        for i, (x, c) in enumerate(zip(xs, cs, strict=True))
    ]


@pytest.mark.parametrize("split_at", [50, 250, 420])
def test_model_state_resumes_exactly_mid_capture_and_mid_window(split_at: int) -> None:
    config = validate_config(CONFIG)
    stream = payloads(700, seed=3)
    ts = np.zeros(len(stream))

    straight = Pipeline(config, {})
    expected = straight.process(stream, ts).evaluations

    first = Pipeline(config, {})
    got = first.process(stream[:split_at], ts[:split_at]).evaluations
    state = decode_checkpoint(
        encode_checkpoint(Checkpoint("r", 0.0, {}, {"m": first.monitors["m"].state(["t/0"])}))
    ).models["m"]
    second = Pipeline(config, {})
    second.monitors["m"].restore(state)
    got += second.process(stream[split_at:], ts[split_at:]).evaluations

    assert [(e.first_event, e.last_event, e.result) for e in got] == [
        (e.first_event, e.last_event, e.result) for e in expected
    ]
    a, b = straight.monitors["m"], second.monitors["m"]
    assert a.window is not None and b.window is not None
    for key, value in a.window.state_dict().items():
        np.testing.assert_array_equal(value, b.window.state_dict()[key])
    assert (a.events_seen, a.evaluations) == (b.events_seen, b.evaluations)


def test_a_state_from_another_configuration_is_rejected() -> None:
    config = validate_config(CONFIG)
    pipeline = Pipeline(config, {})
    pipeline.process(payloads(300, seed=1), np.zeros(300))
    state = pipeline.monitors["m"].state([])
    other = dict(CONFIG)
    other["models"] = {"m": {**CONFIG["models"]["m"], "window": {"events": 600, "slide": 100}}}
    fresh = Pipeline(validate_config(other), {})
    with pytest.raises(CheckpointError, match="another configuration"):
        fresh.monitors["m"].restore(state)


def test_reference_profiles_are_part_of_the_fingerprint() -> None:
    rng = np.random.default_rng(0)
    kinds = {"x": FeatureKind.NUMERIC, "c": FeatureKind.CATEGORICAL}
    one = build_profile("m", {"x": rng.normal(size=500), "c": ["a"] * 500}, kinds)
    two = build_profile("m", {"x": rng.normal(2, 1, size=500), "c": ["a"] * 500}, kinds)
    config = validate_config(CONFIG)
    a = Pipeline(config, {"m": one}).monitors["m"].fingerprint
    b = Pipeline(config, {"m": two}).monitors["m"].fingerprint
    assert a != b


# -- tampered and odd files (hardening: a checkpoint is input like any other) -----------


def test_a_fifo_at_the_checkpoint_path_is_set_aside_without_blocking(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "r1")
    store.directory.mkdir(parents=True)
    os.mkfifo(store.path)  # opening it for reading would block until a writer appears
    assert store.load_all() == []
    assert not store.path.exists()
    assert any(p.name.startswith("r1.ckpt.corrupt-") for p in store.directory.iterdir())


def test_a_symlink_to_dev_zero_is_refused_not_read(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "r1")
    store.directory.mkdir(parents=True)
    store.path.symlink_to("/dev/zero")
    assert store.load_all() == []
    store.handover_path.symlink_to("/dev/zero")
    assert store.load_handover() is None


def test_a_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.ckpt"
    path.write_bytes(encode_checkpoint(sample()))
    with pytest.raises(CheckpointError, match="more than the 100 read"):
        read_checkpoint_file(path, limit=100)
    assert read_checkpoint_file(path) == path.read_bytes()


def _tampered(state: ModelState, **scalars: object) -> ModelState:
    changed = {**state.scalars, **scalars}
    for key, value in scalars.items():
        if value is None:
            del changed[key]
    return ModelState(state.model, state.fingerprint, state.partitions, changed, state.arrays)


@pytest.mark.parametrize(
    "change",
    [
        {"events_seen": None},
        {"alert": {"state": 99}},
        {"alert": "firing"},
        {"evaluations": "many"},
        {"window.current": -7},
        {"window.seen": -1},
    ],
    ids=["no-events_seen", "alert-99", "alert-string", "bad-int", "neg-current", "neg-seen"],
)
def test_a_parseable_but_tampered_model_state_is_a_checkpoint_error(
    change: dict[str, object],
) -> None:
    """Each of these stopped the daemon at every start (exit 1) despite on_corrupt: fresh;
    recovery treats a CheckpointError by starting the model fresh."""
    config = validate_config(CONFIG)
    source = Pipeline(config, {})
    source.process(payloads(450, seed=3), np.zeros(450))
    state = source.model_state("m", ["t/0"])
    assert set(change) <= set(state.scalars) | {"events_seen"}
    target = Pipeline(config, {})
    with pytest.raises(CheckpointError, match="model 'm'|window state"):
        target.restore_model("m", _tampered(state, **change))


def test_negative_window_counts_are_refused() -> None:
    config = validate_config(CONFIG)
    source = Pipeline(config, {})
    source.process(payloads(450, seed=3), np.zeros(450))
    state = source.model_state("m", ["t/0"])
    key = next(k for k in state.arrays if k.endswith("slot_events"))
    arrays = {**state.arrays, key: state.arrays[key] - 10_000}
    tampered = ModelState(state.model, state.fingerprint, state.partitions, state.scalars, arrays)
    with pytest.raises(CheckpointError, match="negative|inconsistent"):
        Pipeline(config, {}).restore_model("m", tampered)
