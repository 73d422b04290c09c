"""The config contract: every documented key, its error messages, env overrides, budgets."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

import monitor.config.problems as problems_module
from monitor.config import (
    CaptureReference,
    Config,
    CountWindowConfig,
    TimeWindowConfig,
    load_config,
    render_problems,
    validate_config,
)
from monitor.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "config.yaml"

BASE: dict[str, Any] = {
    "kafka": {"bootstrap_servers": "127.0.0.1:9092", "topics": ["ml.inference"]},
    "models": {
        "fraud": {
            "reference": {"capture_events": 1000},
            "window": {"events": 2000, "slide": 200},
            "features": {"amount": {"type": "numeric"}, "country": {"type": "categorical"}},
            "prediction": {"type": "numeric"},
        }
    },
}


def cfg(**patch: Any) -> dict[str, Any]:
    """BASE with dotted-path patches: cfg(**{"models.fraud.bins": 10})."""
    data = copy.deepcopy(BASE)
    for dotted, value in patch.items():
        node = data
        *parents, last = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return data


def problems(data: Any) -> list[tuple[str, str, str]]:
    with pytest.raises(ConfigError) as info:
        validate_config(data)
    return [(p.path, p.message, p.hint) for p in info.value.problems]


def one_problem(data: Any) -> tuple[str, str, str]:
    found = problems(data)
    assert len(found) == 1, found
    return found[0]


# ------------------------------------------------------------------ defaults and examples


def test_minimal_config_defaults() -> None:
    c = validate_config(BASE)
    assert c.kafka.group_id == "driftmon"
    assert c.kafka.topics[0].name == "ml.inference" and c.kafka.topics[0].model is None
    assert c.kafka.topics[0].fields.features == "features"
    assert c.kafka.consumer == {} and c.kafka.producer == {}
    assert c.kafka.dead_letter_topic is None
    assert (c.kafka.batch_max_messages, c.kafka.poll_timeout_seconds) == (20_000, 0.5)
    assert c.kafka.max_message_bytes == 1_048_576
    assert (c.http.host, c.http.port) == ("0.0.0.0", 9108)
    assert (c.log.level, c.log.format) == ("info", "text")
    assert c.webhooks == [] and c.state is None and c.limits.max_series == 10_000
    m = c.models["fraud"]
    assert m.tests == ["psi", "ks", "js", "chi2"]
    t = m.thresholds
    assert (t.psi, t.ks, t.ks_p_value, t.kl, t.js) == (0.2, None, 0.001, None, 0.1)
    assert (t.wasserstein, t.chi2_p_value, t.missing_ratio) == (None, 0.001, 0.1)
    assert (m.bins, m.psi_buckets, m.max_categories) == (100, 10, 50)
    assert (m.alert.min_features, m.alert.consecutive, m.alert.cooldown_seconds) == (1, 2, 3600)
    assert isinstance(m.reference, CaptureReference)
    assert isinstance(m.window, CountWindowConfig) and m.window.slots == 10


def test_models_are_frozen() -> None:
    c = validate_config(BASE)
    with pytest.raises(ValueError, match="frozen"):
        c.http.port = 1  # type: ignore[misc]


def test_example_config_loads(tmp_path: Path) -> None:
    c = load_config(EXAMPLE, env={})
    assert set(c.models) == {"fraud", "churn"}
    assert c.kafka.topics[1].model == "churn"
    assert c.state is not None and c.state.on_corrupt == "fresh"
    assert c.webhooks[0].secret_env == "DRIFTMON_WEBHOOK_SECRET"
    assert c.models["churn"].feature_kinds() == {
        "tenure_months": "numeric",
        "plan": "categorical",
        "prediction.no": "numeric",
        "prediction.yes": "numeric",
    }
    assert isinstance(c.models["churn"].window, TimeWindowConfig)
    # the secret's variable is not a config key, so it is ignored by the overlay
    load_config(EXAMPLE, env={"DRIFTMON_WEBHOOK_SECRET": "whsec_x"})


def test_issue_example_config(tmp_path: Path) -> None:
    (tmp_path / "baselines").mkdir()
    (tmp_path / "baselines" / "fraud.json").write_text("{}")
    text = """
kafka:
  bootstrap_servers: 127.0.0.1:9092
  group_id: driftmon
  topics: [ml.inference]
  consumer: {session.timeout.ms: 6000}
  dead_letter_topic: driftmon.dlq
http: {host: 0.0.0.0, port: 9108}
models:
  fraud:
    reference: baselines/fraud.json
    window: {events: 20000, slide: 2000}
    features:
      amount: {type: numeric}
      country: {type: categorical}
    prediction: {type: numeric}
    tests: [psi, ks, js]
    thresholds: {psi: 0.2, ks_p_value: 0.001, js: 0.1}
    alert: {min_features: 1, consecutive: 2, cooldown_seconds: 3600}
webhooks: []
"""
    path = tmp_path / "driftmon.yaml"
    path.write_text(text)
    c = load_config(path, env={})
    # relative reference paths resolve against the config file's directory
    assert c.models["fraud"].reference == str(tmp_path / "baselines" / "fraud.json")
    assert c.kafka.consumer == {"session.timeout.ms": 6000}


# ------------------------------------------------------------------------------ kafka


def test_topics_accept_strings_and_objects() -> None:
    c = validate_config(
        cfg(
            **{
                "kafka.topics": [
                    "a",
                    {"name": "b", "model": "fraud", "fields": {"features": "x", "ts": "time"}},
                ]
            }
        )
    )
    assert [t.name for t in c.kafka.topics] == ["a", "b"]
    assert c.topic("b").fields.features == "x" and c.topic("b").fields.ts == "time"
    assert c.topic("b").fields.label == "label"


@pytest.mark.parametrize(
    ("patch", "path", "message"),
    [
        ({"kafka.topics": []}, "kafka.topics", "must not be empty"),
        ({"kafka.topics": ["bad topic"]}, "kafka.topics.0.name", "not allowed"),
        ({"kafka.topics": ["a", "a"]}, "kafka.topics", "listed twice"),
        ({"kafka.topics": [{"name": "a", "modle": "x"}]}, "kafka.topics.0.modle", "unknown key"),
        ({"kafka.batch_max_messages": 0}, "kafka.batch_max_messages", "greater than"),
        ({"kafka.poll_timeout_seconds": 0}, "kafka.poll_timeout_seconds", "greater than"),
        ({"kafka.max_message_bytes": "big"}, "kafka.max_message_bytes", "valid integer"),
        ({"kafka.consumer": {"a": {"b": 1}}}, "kafka.consumer.a", "must be a string"),
        ({"kafka.consumer": {"group.id": "x"}}, "kafka.consumer", "cannot be passed"),
        ({"kafka.producer": {"enable.auto.commit": True}}, "kafka.producer", "cannot be passed"),
        ({"kafka.group_id": ""}, "kafka.group_id", ""),
        ({"kafka.dead_letter_topic": "ml.inference"}, "kafka.dead_letter_topic", "also consumed"),
        (
            {"kafka.topics": [{"name": "a", "fields": {"ts": "x", "id": "x"}}]},
            "kafka.topics.0.fields",
            "distinct",
        ),
    ],
)
def test_kafka_errors(patch: dict[str, Any], path: str, message: str) -> None:
    got = one_problem(cfg(**patch))
    assert got[0].startswith(path), got
    assert message in got[1], got


def test_missing_bootstrap_servers_hint() -> None:
    data = cfg()
    del data["kafka"]["bootstrap_servers"]
    path, message, hint = one_problem(data)
    assert (path, message) == ("kafka.bootstrap_servers", "required key is missing")
    assert "DRIFTMON_KAFKA__BOOTSTRAP_SERVERS" in hint


def test_topic_bound_to_unknown_model() -> None:
    path, message, hint = one_problem(cfg(**{"kafka.topics": [{"name": "a", "model": "frod"}]}))
    assert path == "kafka.topics.0.model" and "unknown model 'frod'" in message
    assert "did you mean 'fraud'" in hint


def test_secret_librdkafka_options_are_masked() -> None:
    c = validate_config(cfg(**{"kafka.consumer": {"sasl.password": "hunter22"}}))
    assert "hunter22" not in repr(c) and "hunter22" not in str(c)
    assert c.kafka.secret_values == ("hunter22",)


# --------------------------------------------------------------------- http, log, state


def test_http_log_state_limits_values() -> None:
    c = validate_config(
        cfg(
            http={"host": "127.0.0.1", "port": 0},
            log={"level": "DEBUG", "format": "json"},
            state={"dir": "/var/lib/driftmon", "on_corrupt": "refuse"},
            limits={"max_series": 100},
        )
    )
    assert (c.http.host, c.http.port) == ("127.0.0.1", 0)
    assert (c.log.level, c.log.format) == ("debug", "json")
    assert c.state is not None
    assert (c.state.dir, c.state.checkpoint_interval_seconds) == ("/var/lib/driftmon", 10.0)
    assert c.state.on_corrupt == "refuse"


@pytest.mark.parametrize(
    ("patch", "path", "message"),
    [
        ({"http.port": 70000}, "http.port", "less than or equal"),
        ({"http.port": "x"}, "http.port", "valid integer"),
        ({"http.hots": "x"}, "http.hots", "unknown key"),
        ({"log.level": "verbose"}, "log.level", "invalid value 'verbose'"),
        ({"log.format": "xml"}, "log.format", "'text' or 'json'"),
        ({"state": {}}, "state.dir", "required key is missing"),
        ({"state": {"dir": "/x", "on_corrupt": "crash"}}, "state.on_corrupt", "invalid value"),
        ({"state": {"dir": "/x", "checkpoint_interval_seconds": 0}}, "state.checkpoint", ""),
        ({"limits.max_series": 0}, "limits.max_series", "greater than"),
    ],
)
def test_section_errors(patch: dict[str, Any], path: str, message: str) -> None:
    got = one_problem(cfg(**patch))
    assert got[0].startswith(path), got
    assert message in got[1], got


def test_unknown_top_level_key_suggests_nearest() -> None:
    path, message, hint = one_problem(cfg(webhook=[]))
    assert (path, message) == ("webhook", "unknown key 'webhook'")
    assert "did you mean 'webhooks'?" in hint and "kafka" in hint


def test_timestamps_timezone_named_zone_or_a_clear_error() -> None:
    config = validate_config(cfg(**{"timestamps.timezone": "Europe/Berlin"}))
    assert config.timestamps.zone is not None and str(config.timestamps.zone) == "Europe/Berlin"
    assert validate_config(cfg()).timestamps.zone is None  # default: reject, as RFC 3339
    path, message, hint = one_problem(cfg(**{"timestamps.timezone": "Europe/Berln"}))
    assert (path, message) == ("timestamps.timezone", "unknown time zone 'Europe/Berln'")
    assert "did you mean 'Europe/Berlin'?" in hint and "IANA" in hint


def test_planned_keys_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    # Keys that a later version will support get a "planned" hint, not a spelling guess.
    monkeypatch.setattr(problems_module, "_PLANNED_KEYS", {"someday": "future things"})
    _, _, hint = one_problem(cfg(**{"models.fraud.alert.someday": 1}))
    assert "planned" in hint


# ---------------------------------------------------------------------------- models


def test_models_required_and_non_empty() -> None:
    data = cfg()
    del data["models"]
    assert one_problem(data)[:2] == ("models", "required key is missing")
    path, message, hint = one_problem(cfg(models={}))
    assert (path, message) == ("models", "must not be empty") and "at least one" in hint


@pytest.mark.parametrize("name", ["fraud model", "1fraud", "x" * 65, "fraud/v2", "fraud{x}"])
def test_model_and_feature_names_are_label_safe(name: str) -> None:
    model = BASE["models"]["fraud"]
    path, message, hint = one_problem(cfg(models={name: model}))
    assert path == f"models.{name}" and "not allowed" in message and "label" in hint
    feats = {name: {"type": "numeric"}}
    path, _, _ = one_problem(cfg(**{"models.fraud.features": feats}))
    assert path == f"models.fraud.features.{name}"


def test_reference_forms() -> None:
    with pytest.raises(ConfigError):
        validate_config(cfg(**{"models.fraud.reference": {"capture_events": 99}}))
    path, message, hint = one_problem(cfg(**{"models.fraud.reference": 5}))
    assert path == "models.fraud.reference" and "capture_events" in message
    found = problems(cfg(**{"models.fraud.reference": {"capture": 5}}))
    assert ("models.fraud.reference.capture_events", "required key is missing") in [
        f[:2] for f in found
    ]
    unknown = [f for f in found if f[0] == "models.fraud.reference.capture"]
    assert unknown and "did you mean 'capture_events'?" in unknown[0][2]


def test_loading_does_not_require_the_profile_files(tmp_path: Path) -> None:
    # `driftmon baseline` writes the profile the config names: each command checks the
    # files it needs (monitor.app.preflight, tests/unit/test_preflight.py).
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg(**{"models.fraud.reference": "nope.json"})))
    assert load_config(path, env={}).models["fraud"].reference == str(tmp_path / "nope.json")


def test_the_kafka_section_is_optional_for_the_document() -> None:
    data = cfg()
    del data["kafka"]
    config = validate_config(data)
    assert config.kafka is None
    assert [t.name for t in config.topics] == ["driftmon.offline"]
    assert config.max_message_bytes == 1_048_576


def test_profile_reference_may_omit_features(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text("{}")
    data = cfg(**{"models.fraud.reference": "p.json", "models.fraud.features": {}})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    assert load_config(path, env={}).models["fraud"].feature_kinds() == {"prediction": "numeric"}
    path, _, hint = one_problem(cfg(**{"models.fraud.features": {}}))
    assert path == "models.fraud.features" and "profile" in hint


def test_count_window_rules() -> None:
    path, message, hint = one_problem(
        cfg(**{"models.fraud.window": {"events": 1000, "slide": 300}})
    )
    assert path == "models.fraud.window.slide"
    assert message == "slide 300 does not divide events 1000" and "250" in hint
    path, message, _ = one_problem(cfg(**{"models.fraud.window": {"events": 100, "slide": 200}}))
    assert path == "models.fraud.window.slide" and "larger than the window" in message
    path, message, hint = one_problem(
        cfg(**{"models.fraud.window": {"events": 1_000_000, "slide": 500}})
    )
    assert "2000 slides" in message and "1000" in hint
    _, message, _ = one_problem(cfg(**{"models.fraud.window": {"events": 0, "slide": 1}}))
    assert "greater than or equal to 1" in message


def test_time_window_rules() -> None:
    w = (
        validate_config(cfg(**{"models.fraud.window": {"seconds": 3600, "slide_seconds": 300}}))
        .models["fraud"]
        .window
    )
    assert isinstance(w, TimeWindowConfig) and w.slots == 12 and w.min_events == 100
    path, message, _ = one_problem(
        cfg(**{"models.fraud.window": {"seconds": 3600, "slide_seconds": 7}})
    )
    assert path == "models.fraud.window.slide_seconds" and "does not divide" in message
    path, _, hint = one_problem(cfg(**{"models.fraud.window": {"hours": 1}}))
    assert path == "models.fraud.window" and "slide_seconds" in hint
    _, message, _ = one_problem(
        cfg(**{"models.fraud.window": {"seconds": 10, "slide_seconds": 5, "min_events": 0}})
    )
    assert "greater than or equal to 1" in message


def test_unknown_tests_list_the_valid_ones() -> None:
    path, message, hint = one_problem(cfg(**{"models.fraud.tests": ["psi", "kss", "anova"]}))
    assert path == "models.fraud.tests"
    assert message == "unknown tests 'kss', 'anova'"
    assert "valid tests: psi, ks, kl, js, wasserstein, chi2" in hint
    assert "did you mean 'ks'" in hint
    feats = {"amount": {"type": "numeric", "tests": ["chi2"]}}
    path, message, hint = one_problem(cfg(**{"models.fraud.features": feats}))
    assert path == "models.fraud.features.amount.tests" and "chi2 cannot run" in message
    assert "psi, ks, kl, js, wasserstein" in hint
    assert one_problem(cfg(**{"models.fraud.tests": []}))[1] == "must not be empty"


def test_feature_type_required_and_valid() -> None:
    path, message, _ = one_problem(cfg(**{"models.fraud.features": {"a": {}}}))
    assert (path, message) == ("models.fraud.features.a.type", "required key is missing")
    _, message, _ = one_problem(cfg(**{"models.fraud.features": {"a": {"type": "text"}}}))
    assert "invalid value 'text'" in message


def test_prediction_rules() -> None:
    path, message, hint = one_problem(cfg(**{"models.fraud.prediction": {"type": "probabilities"}}))
    assert path == "models.fraud.prediction.classes" and "classes" in message
    assert "classes: [a, b" in hint
    pred = {"type": "numeric", "classes": ["a"]}
    assert one_problem(cfg(**{"models.fraud.prediction": pred}))[0].endswith("classes")
    pred = {"type": "probabilities", "classes": ["a", "a"]}
    assert "twice" in one_problem(cfg(**{"models.fraud.prediction": pred}))[1]
    feats = {"prediction": {"type": "numeric"}}
    _, message, _ = one_problem(cfg(**{"models.fraud.features": feats}))
    assert "collides" in message


def test_thresholds_ranges() -> None:
    for key, value in [("psi", -1), ("ks_p_value", 0), ("chi2_p_value", 1), ("missing_ratio", 2)]:
        path, _, _ = one_problem(cfg(**{f"models.fraud.thresholds.{key}": value}))
        assert path == f"models.fraud.thresholds.{key}"
    assert one_problem(cfg(**{"models.fraud.thresholds.pis": 1}))[2].startswith(
        "did you mean 'psi'?"
    )


def test_numbers_and_alert_bounds() -> None:
    for key in ("bins", "psi_buckets", "max_categories"):
        assert one_problem(cfg(**{f"models.fraud.{key}": 0}))
    path, message, _ = one_problem(cfg(**{"models.fraud.alert": {"min_features": 4}}))
    assert path == "models.fraud.alert.min_features" and "only 3 features" in message
    assert one_problem(cfg(**{"models.fraud.alert": {"consecutive": 0}}))[0].endswith("consecutive")
    assert one_problem(cfg(**{"models.fraud.alert": {"cooldown_seconds": -1}}))


def test_helpers_resolve_overrides() -> None:
    c = validate_config(
        cfg(
            **{
                "models.fraud.features": {
                    "amount": {"type": "numeric", "tests": ["wasserstein", "ks"]},
                    "country": {"type": "categorical", "thresholds": {"psi": 0.5, "js": None}},
                },
                "models.fraud.prediction": {"type": "probabilities", "classes": ["a", "b"]},
            }
        )
    )
    m = c.models["fraud"]
    assert list(m.feature_kinds()) == ["amount", "country", "prediction.a", "prediction.b"]
    assert m.tests_for("amount") == ("wasserstein", "ks")
    assert m.tests_for("country") == ("psi", "js", "chi2")
    assert m.tests_for("prediction.a") == ("psi", "ks", "js")
    assert m.tests_for("from_profile", "categorical") == ("psi", "js", "chi2")
    t = m.thresholds_for("country")
    assert (t.psi, t.js, t.ks_p_value) == (0.5, None, 0.001)
    assert m.thresholds_for("amount") == m.thresholds
    with pytest.raises(KeyError):
        m.tests_for("nope")


# ------------------------------------------------------------------------- webhooks


def test_webhooks_section() -> None:
    hook = {"name": "r", "url": "https://x.example/h", "models": ["fraud"], "secret_env": "S"}
    c = validate_config(cfg(webhooks=[hook]))
    assert c.webhooks[0].name == "r"
    path, _, hint = one_problem(cfg(webhooks=[{**hook, "retyr": {}}]))
    assert path == "webhooks.0.retyr" and "did you mean 'retry'?" in hint
    path, message, _ = one_problem(cfg(webhooks=[{**hook, "models": ["nope"]}]))
    assert path == "webhooks.0.models" and "unknown model 'nope'" in message
    path, message, _ = one_problem(cfg(webhooks=[hook, hook]))
    assert path == "webhooks.1.name" and "used twice" in message


# ------------------------------------------------------------------------ series budget


def test_series_budget() -> None:
    c = validate_config(BASE)
    # amount: psi ks js + ks p-value; country: psi js chi2 + chi2 p-value; prediction as amount
    assert c.series_count == 12
    path, message, hint = one_problem(cfg(**{"limits.max_series": 11}))
    assert path == "limits.max_series"
    assert "12 drift score/p-value series" in message and "limit of 11" in message
    assert "fraud=12" in message and "raise limits.max_series" in hint
    feats = {f"f{i}": {"type": "numeric"} for i in range(3000)}
    _, message, _ = one_problem(cfg(**{"models.fraud.features": feats}))
    assert "12004 drift score/p-value series" in message and "10000" in message


# -------------------------------------------------------- files, YAML and environment


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "driftmon.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "missing.yaml", env={})
    (problem,) = info.value.problems
    assert problem.path == "(file)" and "not found" in problem.message and problem.hint


@pytest.mark.parametrize(
    ("text", "line", "hint"),
    [
        ("kafka:\n\tbootstrap_servers: x\n", 2, "tabs"),
        ("kafka: {bootstrap_servers: x\nhttp: {}\n", 2, "brackets"),
        ("kafka:\n  a: 1\n b: 2\n", 3, ""),
    ],
)
def test_yaml_syntax_errors_have_line_and_column(
    tmp_path: Path, text: str, line: int, hint: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={})
    (problem,) = info.value.problems
    assert problem.path == "(yaml)" and f"line {line}, column" in problem.message
    assert hint in problem.hint and problem.hint


def test_empty_and_non_mapping_files(tmp_path: Path) -> None:
    for text in ("", "- a\n- b\n", "just text\n"):
        with pytest.raises(ConfigError) as info:
            load_config(write(tmp_path, text), env={})
        assert info.value.problems[0].path == "(config)"


def test_env_overrides(tmp_path: Path) -> None:
    env = {
        "DRIFTMON_KAFKA__BOOTSTRAP_SERVERS": "broker:29092",
        "DRIFTMON_HTTP__PORT": "9200",
        "DRIFTMON_MODELS__FRAUD__WINDOW__EVENTS": "4000",
        "DRIFTMON_MODELS__FRAUD__TESTS": "[psi, ks]",
        "DRIFTMON_KAFKA__TOPICS": "[a, b]",
        "DRIFTMON_KAFKA__CONSUMER__SESSION_TIMEOUT_MS": "7000",
        "DRIFTMON_LOG": "{level: debug, format: json}",
        "DRIFTMON_STATE__DIR": "/tmp/state",
        "OTHER_HTTP__PORT": "1",
    }
    c = load_config(write(tmp_path, BASE), env=env)
    assert c.kafka.bootstrap_servers == "broker:29092"
    assert c.http.port == 9200
    assert c.models["fraud"].window.events == 4000  # type: ignore[union-attr]
    assert c.models["fraud"].tests == ["psi", "ks"]
    assert [t.name for t in c.kafka.topics] == ["a", "b"]
    assert c.kafka.consumer == {"session.timeout.ms": "7000"}  # librdkafka takes text
    assert (c.log.level, c.log.format) == ("debug", "json")
    assert c.state is not None and c.state.dir == "/tmp/state"


def test_env_override_list_index_and_errors(tmp_path: Path) -> None:
    data = cfg(webhooks=[{"name": "r", "url": "https://x.example/h"}])
    env = {"DRIFTMON_WEBHOOKS__0__URL": "https://y.example/h"}
    assert str(load_config(write(tmp_path, data), env=env).webhooks[0].url).startswith("https://y")
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, BASE), env={"DRIFTMON_HTTP__PORT": "high"})
    (problem,) = info.value.problems
    assert problem.path == "http.port" and "(set by DRIFTMON_HTTP__PORT)" in problem.message
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, BASE), env={"DRIFTMON_HTTP__PROT": "1"})
    assert info.value.problems[0].path == "http.prot"
    assert "did you mean 'port'" in info.value.problems[0].hint


def test_env_defaults_to_os_environ(tmp_path: Path, env: Any) -> None:
    env.set("DRIFTMON_HTTP__PORT", "9300")
    assert load_config(write(tmp_path, BASE)).http.port == 9300


def test_every_problem_is_collected_and_rendered(tmp_path: Path) -> None:
    data = cfg(
        **{
            "http.port": -1,
            "log.format": "xml",
            "models.fraud.tests": ["nope"],
            "models.fraud.window": {"events": 1000, "slide": 300},
            "extra": 1,
        }
    )
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, data), env={})
    paths = {p.path for p in info.value.problems}
    assert paths == {
        "http.port",
        "log.format",
        "models.fraud.tests",
        "models.fraud.window.slide",
        "extra",
    }
    text = render_problems(info.value)
    assert text.splitlines()[0].endswith("5 problems")
    assert "  models.fraud.window.slide: slide 300 does not divide events 1000" in text
    assert "      hint: pick a slide that divides the window exactly" in text
    assert "Traceback" not in text and "pydantic" not in text.lower()
    assert "models.fraud.tests: unknown test 'nope'" in str(info.value)


def test_config_model_validate_direct() -> None:
    assert isinstance(Config.model_validate(BASE), Config)
