"""What each command checks before it starts: one pass that lists every problem at once.

``driftmon check-config`` runs the same checks as ``driftmon run`` (everything short of
binding the port and connecting to the broker), so a config it passes is one ``run``
starts with. The checks, each reported with its key path and a hint:

* the document itself (schema and cross-section checks, ``monitor.config``);
* every profile file it names: present, readable and a driftmon profile, checked from the
  parsed document so a broken file is listed even when other keys are invalid;
* the ``kafka`` section, which only ``run`` needs (``baseline`` and ``replay`` read files);
* the webhooks' ``*_env`` variables and ``*_file`` secrets, and their format params;
* ``state.dir``: a directory driftmon can write (``run`` creates it when missing);
* the profiles against the config (features the config monitors), by building the
  pipeline once.

``baseline`` needs only the document: the profile it writes may not exist yet. For
``check-config`` a missing profile or kafka section is not an error in the file but a step
still to take; :attr:`Preflight.pending` lists those (the CLI exits 3 on them alone).

Example::

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "driftmon.yaml").write_text(
    ...     "models:\\n  fraud:\\n    reference: baselines/fraud.json\\n"
    ...     "    window: {events: 2000, slide: 500}\\n"
    ...     "    features: {amount: {type: numeric}}\\n")
    >>> checked = preflight(d / "driftmon.yaml", Command.CHECK, env={})
    >>> [p.path for p in checked.pending]
    ['kafka', 'models.fraud.reference']
    >>> preflight(d / "driftmon.yaml", Command.BASELINE, env={}).config.kafka is None
    True
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from monitor.config import Config, read_config_data, reference_files, validate_config
from monitor.errors import ConfigError, ConfigProblem, ProfileError
from monitor.model.reference_file import ModelReference, ReferenceFile, load_references

__all__ = ["Command", "Preflight", "preflight"]


class Command(StrEnum):
    """The commands that read a config, each needing a different part of it."""

    RUN = "run"
    REPLAY = "replay"
    BASELINE = "baseline"
    CHECK = "check-config"


# What each command needs beyond a valid document.
_NEEDS_PROFILES = {Command.RUN, Command.REPLAY, Command.CHECK}
_NEEDS_SERVICE = {Command.RUN, Command.CHECK}  # kafka, webhook secrets, state dir


@dataclass(frozen=True)
class Preflight:
    """A config that passed a command's checks.

    ``references`` holds the loaded profiles when the command needs them (``run``,
    ``replay``, ``check-config``); ``pending`` (``check-config`` only) what ``run`` still
    needs that is not an error in the file: a profile not built yet, a kafka section.
    """

    config: Config
    references: dict[str, ModelReference] | None = None
    pending: tuple[ConfigProblem, ...] = field(default=())


def preflight(
    path: str | os.PathLike[str], command: Command, env: Mapping[str, str] | None = None
) -> Preflight:
    """Load the config at ``path`` and run every check ``command`` needs.

    Raises one :class:`ConfigError` listing every problem found (for ``check-config``,
    missing profiles among them only when there is some other problem too).
    """
    env = os.environ if env is None else env
    source = str(path)
    data, env_keys = read_config_data(path, env)
    problems: list[ConfigProblem] = []
    config: Config | None = None
    try:
        config = validate_config(data, source, env_keys)
    except ConfigError as exc:
        problems.extend(exc.problems)
    pending: list[ConfigProblem] = []
    if command in _NEEDS_SERVICE and not (isinstance(data, dict) and "kafka" in data):
        (problems if command is Command.RUN else pending).append(_no_kafka(command))
    if command in _NEEDS_PROFILES:
        missing, broken = _profile_problems(data, source)
        problems.extend(broken)
        (pending if command is Command.CHECK else problems).extend(missing)
    if command in _NEEDS_SERVICE and isinstance(data, dict):
        problems.extend(_webhook_problems(data.get("webhooks"), env))
        problems.extend(_state_dir_problems(data.get("state"), create=command is Command.RUN))
        problems.extend(_web_config_problems(config))
    missing_too = [p for p in pending if p.path != "kafka"]
    if problems or config is None:
        # A missing profile is listed with the other problems: all of them are to be fixed.
        raise ConfigError([*problems, *missing_too], source)
    references = None
    if command in _NEEDS_PROFILES and not missing_too:
        references = _load(config, source, check_pipeline=command is Command.CHECK)
    return Preflight(config, references, tuple(pending))


def _web_config_problems(config: Config | None) -> list[ConfigProblem]:
    """The web configuration file loads: certificates, keys and bcrypt hashes included."""
    if config is None or config.http.web_config_file is None:
        return []
    from monitor.publish.web_config import load_web_config

    try:
        load_web_config(Path(config.http.web_config_file))
    except ConfigError as exc:
        return list(exc.problems)
    return []


def _no_kafka(command: Command) -> ConfigProblem:
    if command is Command.RUN:
        message = "required key is missing: `driftmon run` consumes from Kafka"
    else:
        message = "no kafka section: fine for baseline and replay, needed by `driftmon run`"
    return ConfigProblem(
        "kafka",
        message,
        "add `kafka: {bootstrap_servers: HOST:PORT, topics: [TOPIC]}` before `driftmon run`",
    )


def _profile_problems(data: Any, source: str) -> tuple[list[ConfigProblem], list[ConfigProblem]]:
    """Profiles not built yet, and profiles that are there but unusable."""
    missing: list[ConfigProblem] = []
    broken: list[ConfigProblem] = []
    for key, file in reference_files(data).items():
        path = Path(file)
        if not path.exists():
            missing.append(
                ConfigProblem(
                    key, f"reference profile {path} not built yet", _build_hint(key, source, path)
                )
            )
            continue
        try:
            ReferenceFile(path).profile()
        except ProfileError as exc:
            broken.append(
                ConfigProblem(key, str(exc), f"rebuild it: {_baseline_command(key, source, path)}")
            )
    return missing, broken


def _build_hint(key: str, source: str, path: Path) -> str:
    command = _baseline_command(key, source, path)
    if ".versions.references." in key:
        return (
            f"run {command} with events of that version, or leave the version out to "
            "capture its reference from the stream"
        )
    return f"run {command}, or use `reference: {{capture_events: N}}` to capture it from the stream"


def _baseline_command(key: str, source: str, path: Path) -> str:
    """The command that builds the profile at ``path``, ready to paste from here."""
    model = key.split(".")[1]
    output = os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)
    return (
        f"`driftmon baseline --config {source} --model {model} --input TRAINING.jsonl "
        f"--output {output}` (your training data in TRAINING.jsonl)"
    )


def _webhook_problems(raw: Any, env: Mapping[str, str]) -> list[ConfigProblem]:
    """Secrets and format params of every webhook that is valid as a document."""
    from pydantic import ValidationError

    from monitor.webhooks.config import WebhookConfig
    from monitor.webhooks.credentials import resolve_credentials
    from monitor.webhooks.formats import validate_webhook

    problems: list[ConfigProblem] = []
    for index, entry in enumerate(raw if isinstance(raw, list) else ()):
        try:
            webhook = WebhookConfig.model_validate(entry)
        except ValidationError:
            continue  # reported by the document's validation
        try:
            validate_webhook(webhook, index=index)
        except ConfigError as exc:
            problems.extend(exc.problems)
        try:
            resolve_credentials(webhook, env, index=index)
        except ConfigError as exc:
            problems.extend(exc.problems)
    return problems


def _state_dir_problems(raw: Any, *, create: bool) -> list[ConfigProblem]:
    """``state.dir`` must be a directory driftmon can write (created by ``run``)."""
    directory = raw.get("dir") if isinstance(raw, dict) else None
    if not isinstance(directory, str) or not directory:
        return []  # absent or invalid: the document's validation says so
    path = Path(directory)
    hint = "point state.dir at a writable directory, e.g. /var/lib/driftmon, or fix its permissions"
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return [ConfigProblem("state.dir", f"{existing} is not a directory", hint)]
    try:
        if create:
            path.mkdir(parents=True, exist_ok=True)
            existing = path
        # A real write: permission bits say nothing under root or on a read-only mount.
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return [ConfigProblem("state.dir", f"cannot write to {existing}: {reason}", hint)]
    return []


def _load(config: Config, source: str, *, check_pipeline: bool) -> dict[str, ModelReference]:
    """Every profile, and (``check_pipeline``) the pipeline built on them once."""
    try:
        references = load_references(config)
        if check_pipeline:
            from monitor.pipeline import Pipeline

            Pipeline(config, references)
    except ProfileError as exc:
        raise ConfigError(
            [ConfigProblem("models", str(exc), "rebuild the profile with `driftmon baseline`")],
            source,
        ) from None
    return references
