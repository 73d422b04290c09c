"""Loading a config file: read the YAML, overlay ``DRIFTMON_`` variables, resolve reference
paths against the file's directory (once, to absolute paths) and validate.

Every failure, from an unreadable file or a YAML syntax error to a bad value, surfaces as
one :class:`~monitor.errors.ConfigError` listing every problem; no pydantic or YAML
traceback gets through.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from monitor.config.env import apply_env
from monitor.config.problems import translate
from monitor.config.root import Config
from monitor.config.yaml_bounded import AliasExpansionError, load_bounded
from monitor.errors import ConfigError, ConfigProblem


def reference_path(reference: str | os.PathLike[str], base_dir: Path | None) -> Path:
    """A reference file's path: relative paths are relative to the config's directory."""
    path = Path(reference)
    return base_dir / path if base_dir is not None and not path.is_absolute() else path


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    """Read, overlay ``DRIFTMON_*`` variables from ``env`` and validate a config file.

    ``env`` defaults to ``os.environ``. Relative reference paths become absolute paths
    against the config file's directory, here and nowhere else, so no later step can join
    them to a directory again. Whether the files exist and load is each command's
    business (``monitor.app.preflight``): ``baseline`` writes one. Raises
    :class:`ConfigError` listing every problem.
    """
    data, env_keys = read_config_data(path, env)
    return validate_config(data, str(path), env_keys)


def read_config_data(
    path: str | os.PathLike[str], env: Mapping[str, str] | None = None
) -> tuple[Any, dict[str, str]]:
    """The parsed document with the ``DRIFTMON_*`` overlay applied and reference paths
    made absolute, and which key paths the environment set (for error messages)."""
    env = os.environ if env is None else env
    data = _read_yaml(Path(path))
    env_keys: dict[str, str] = {}
    if isinstance(data, dict):
        try:
            env_keys = apply_env(data, env)
        except ConfigError as exc:
            raise ConfigError(exc.problems, str(path)) from None
        _resolve_references(data, Path(path).resolve().parent)
    return data, env_keys


def reference_files(data: Any) -> dict[str, str]:
    """Every profile file a parsed document names, by key path (valid or not)."""
    found: dict[str, str] = {}
    models = data.get("models") if isinstance(data, dict) else None
    for name, model in models.items() if isinstance(models, dict) else ():
        if not isinstance(model, dict):
            continue
        if isinstance(model.get("reference"), str):
            found[f"models.{name}.reference"] = model["reference"]
        versions = model.get("versions")
        references = versions.get("references") if isinstance(versions, dict) else None
        for version, file in references.items() if isinstance(references, dict) else ():
            if isinstance(file, str):
                found[f"models.{name}.versions.references.{version}"] = file
    return found


def validate_config(
    data: Any, source: str = "", env_keys: Mapping[str, str] | None = None
) -> Config:
    """Validate an already parsed config, turning every failure into one ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(
            [
                ConfigProblem(
                    "(config)", "the file must hold a mapping", "start from examples/config.yaml"
                )
            ],
            source,
        )
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = [translate(err, env_keys or {}) for err in exc.errors()]
        raise ConfigError(problems, source) from None
    except ConfigError as exc:
        raise ConfigError(exc.problems, source) from None


def _read_yaml(path: Path) -> Any:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [
                ConfigProblem(
                    "(file)",
                    f"config file not found: {path}",
                    "check the path given to --config (relative paths start at the working "
                    "directory); examples/config.yaml is a documented starting point",
                )
            ],
            source,
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            [
                ConfigProblem(
                    "(file)",
                    f"cannot read {path}: {reason}",
                    "the config must be a readable UTF-8 text file",
                )
            ],
            source,
        ) from None
    try:
        data = load_bounded(text)
    except AliasExpansionError as exc:
        raise ConfigError(
            [ConfigProblem("(yaml)", str(exc), "write the values out, or nest fewer aliases (*)")],
            source,
        ) from None
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_yaml_problem(exc, text)], source) from None
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigProblem("(yaml)", f"invalid YAML: {exc}")], source) from None
    if data is None:
        raise ConfigError(
            [ConfigProblem("(config)", "the file is empty", "start from examples/config.yaml")],
            source,
        )
    return data


def _yaml_problem(exc: yaml.MarkedYAMLError, text: str) -> ConfigProblem:
    mark = exc.problem_mark or exc.context_mark
    what = exc.problem or "syntax error"
    if mark is None:
        return ConfigProblem("(yaml)", f"syntax error: {what}")
    line, column = mark.line + 1, mark.column + 1
    lines = text.splitlines()
    snippet = lines[mark.line] if mark.line < len(lines) else ""
    if "\t" in snippet or "tab" in what:
        hint = "YAML does not allow tabs for indentation; indent with spaces"
    elif "mapping values are not allowed" in what:
        hint = "quote values that contain ': ' and check the indentation of this line"
    elif "could not find expected ':'" in what or "simple key" in what:
        hint = "each `key: value` needs a space after the colon; check the previous line too"
    elif "found undefined alias" in what:
        hint = "define the anchor (&name) before using the alias (*name)"
    elif "flow" in what or "expected ',' or" in what:
        hint = "check the brackets and commas of the [list] or {mapping} on this line"
    else:
        hint = "check indentation and quoting around this line"
    return ConfigProblem(
        "(yaml)", f"syntax error at line {line}, column {column}: {what}: {snippet.strip()!r}", hint
    )


def _resolve_references(data: dict[str, Any], base: Path) -> None:
    http = data.get("http")
    if isinstance(http, dict):
        web = http.get("web_config_file")
        if isinstance(web, str) and web and not Path(web).is_absolute():
            http["web_config_file"] = str(base / web)
    models = data.get("models")
    if not isinstance(models, dict):
        return
    for model in models.values():
        if isinstance(model, dict) and isinstance(model.get("reference"), str):
            ref = Path(model["reference"])
            if not ref.is_absolute():
                model["reference"] = str(base / ref)
        versions = model.get("versions") if isinstance(model, dict) else None
        references = versions.get("references") if isinstance(versions, dict) else None
        if isinstance(references, dict):
            for version, path in references.items():
                if isinstance(path, str) and not Path(path).is_absolute():
                    references[version] = str(base / path)
