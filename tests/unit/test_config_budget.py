"""Config of the false-alarm budget, min_effect and retrain grace: parsing, errors, helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from monitor.cli import EXIT_CONFIG, EXIT_OK, main
from monitor.config import validate_config
from tests.support.yaml_edit import REMOVE, edit_yaml
from tests.unit.test_config import cfg, one_problem

BUDGET = {"false_alarms_per_month": 1, "events_per_second": 250}


def alert(**keys: Any) -> dict[str, Any]:
    return cfg(**{"models.fraud.alert": keys})


def test_defaults_leave_every_new_feature_off() -> None:
    a = validate_config(cfg()).models["fraud"].alert
    assert a.false_alarms_per_month is None and not a.has_budget
    assert a.events_per_second is None
    assert (a.correction, a.dependence) == ("bonferroni", "union")
    assert (a.calibration_draws, a.calibration_seed) == (1000, 0)
    assert a.min_effect is None and a.retrain_grace_seconds == 0.0
    assert a.describe() == ""


def test_every_key_parses() -> None:
    a = (
        validate_config(
            alert(
                **BUDGET,
                correction="BH",
                dependence="effective",
                calibration_draws=200,
                calibration_seed=7,
                min_effect={"psi": 0.1, "wasserstein": 0.2, "missing_ratio": 0.05},
                retrain_grace_seconds=3600,
            )
        )
        .models["fraud"]
        .alert
    )
    assert a.has_budget and a.false_alarms_per_month == 1.0 and a.events_per_second == 250
    assert (a.correction, a.dependence) == ("bh", "effective")
    assert (a.calibration_draws, a.calibration_seed) == (200, 7)
    assert a.min_effect is not None
    assert a.min_effect.measures() == {"psi": 0.1, "wasserstein": 0.2, "missing_ratio": 0.05}
    assert a.retrain_grace_seconds == 3600
    assert a.describe() == (
        "false-alarm budget 1/month (bh, effective, 250 events/s); "
        "min_effect psi=0.1, wasserstein=0.2, missing_ratio=0.05; retrain grace 3600 s"
    )


@pytest.mark.parametrize(
    ("keys", "path", "hint_part"),
    [
        ({"false_alarms_per_month": 0, "events_per_second": 1}, "false_alarms_per_month", "e.g. 1"),
        ({"false_alarms_per_month": -2}, "false_alarms_per_month", "above 0"),
        ({"false_alarms_per_month": 1, "events_per_second": 0}, "events_per_second", "above 0"),
        ({**BUDGET, "correction": "holm"}, "correction", "bonferroni"),
        ({**BUDGET, "dependence": "markov"}, "dependence", "union"),
        ({**BUDGET, "calibration_draws": 49}, "calibration_draws", "50 to 100000"),
        ({**BUDGET, "calibration_draws": 100_001}, "calibration_draws", "50 to 100000"),
        ({**BUDGET, "calibration_seed": -1}, "calibration_seed", "0 to"),
        ({"min_effect": {"psi": -0.1}}, "min_effect.psi", "psi: 0.1"),
        ({"min_effect": {"missing_ratio": 1.5}}, "min_effect.missing_ratio", "0 to 1"),
        ({"min_effect": {"ks": "big"}}, "min_effect.ks", ">= 0"),
        ({"min_effect": 0.1}, "min_effect", "min_effect: {psi: 0.1}"),
        ({"retrain_grace_seconds": -1}, "retrain_grace_seconds", "0 turns it off"),
    ],
)
def test_bad_values_name_the_key_and_give_a_hint(
    keys: dict[str, Any], path: str, hint_part: str
) -> None:
    where, _, hint = one_problem(alert(**keys))
    assert where == f"models.fraud.alert.{path}"
    assert hint_part in hint


def test_unknown_min_effect_measure_suggests_the_nearest() -> None:
    where, message, hint = one_problem(alert(min_effect={"pis": 0.1}))
    assert (where, message) == ("models.fraud.alert.min_effect.pis", "unknown key 'pis'")
    assert hint.startswith("did you mean 'psi'?") and "wasserstein" in hint


def test_count_window_budget_needs_the_event_rate() -> None:
    where, message, hint = one_problem(alert(false_alarms_per_month=1))
    assert where == "models.fraud.alert.events_per_second"
    assert "needs the model's event rate" in message
    assert "add `events_per_second:" in hint and "slide (200)" in hint


def test_time_window_budget_needs_no_rate() -> None:
    data = alert(false_alarms_per_month=1)
    data["models"]["fraud"]["window"] = {"seconds": 600, "slide_seconds": 60}
    assert validate_config(data).models["fraud"].alert.has_budget


@pytest.mark.parametrize(
    "key",
    ["events_per_second", "correction", "dependence", "calibration_draws", "calibration_seed"],
)
def test_budget_keys_without_a_budget_are_refused(key: str) -> None:
    # Non-default values: the defaults are what a config dumped back out carries.
    value = {"events_per_second": 10, "correction": "bh", "dependence": "effective",
             "calibration_draws": 500, "calibration_seed": 3}[key]  # fmt: skip
    where, message, hint = one_problem(alert(**{key: value}))
    assert where == f"models.fraud.alert.{key}"
    assert message == f"{key} only applies to a false-alarm budget"
    assert "false_alarms_per_month" in hint


def test_min_effect_and_grace_work_without_a_budget() -> None:
    a = validate_config(alert(min_effect={"psi": 0.1}, retrain_grace_seconds=60))
    assert a.models["fraud"].min_effect_for("amount") == {"psi": 0.1}


def test_env_overrides_reach_the_new_keys(tmp_path: Path) -> None:
    import yaml

    from monitor.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg()))
    env = {
        "DRIFTMON_MODELS__FRAUD__ALERT__FALSE_ALARMS_PER_MONTH": "0.5",
        "DRIFTMON_MODELS__FRAUD__ALERT__EVENTS_PER_SECOND": "100",
        "DRIFTMON_MODELS__FRAUD__ALERT__CORRECTION": "bh",
    }
    a = load_config(path, env).models["fraud"].alert
    assert (a.false_alarms_per_month, a.events_per_second, a.correction) == (0.5, 100, "bh")


def test_per_feature_min_effect_overrides_the_models() -> None:
    data = alert(min_effect={"psi": 0.1, "ks": 0.05})
    data["models"]["fraud"]["features"]["amount"]["min_effect"] = {"psi": 0.3, "ks": None}
    data["models"]["fraud"]["features"]["country"]["min_effect"] = {"js": 0.2}
    m = validate_config(data).models["fraud"]
    assert m.min_effect_for("amount") == {"psi": 0.3}
    assert m.min_effect_for("country") == {"psi": 0.1, "ks": 0.05, "js": 0.2}
    assert m.min_effect_for("prediction") == {"psi": 0.1, "ks": 0.05}
    bad = cfg(**{"models.fraud.features.amount.min_effect": {"psi": -1}})
    where, _, hint = one_problem(bad)
    assert where == "models.fraud.features.amount.min_effect.psi" and "psi: 0.1" in hint


def test_explicit_thresholds_are_only_the_keys_written() -> None:
    data = cfg(**{"models.fraud.thresholds": {"psi": 0.3, "ks_p_value": None}})
    data["models"]["fraud"]["features"]["country"]["thresholds"] = {"js": 0.2}
    m = validate_config(data).models["fraud"]
    assert m.explicit_thresholds_for("amount") == {"psi": 0.3, "ks_p_value": None}
    assert m.explicit_thresholds_for("country") == {"psi": 0.3, "ks_p_value": None, "js": 0.2}
    assert validate_config(cfg()).models["fraud"].explicit_thresholds_for("amount") == {}


GOOD = """
kafka: {bootstrap_servers: 127.0.0.1:9092, topics: [t]}
models:
  fraud:
    reference: {capture_events: 1000}
    window: {events: 2000, slide: 200}
    features: {amount: {type: numeric}}
    alert: {false_alarms_per_month: 1, events_per_second: 50, retrain_grace_seconds: 600}
"""


def test_check_config_shows_the_budget_and_its_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(GOOD)
    assert main(["check-config", str(path)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "fraud: false-alarm budget 1/month (bonferroni, union, 50 events/s)" in out
    assert "retrain grace 600 s" in out
    alert = ("models", "fraud", "alert")
    path.write_text(
        edit_yaml(GOOD, ((*alert, "events_per_second"), REMOVE), ((*alert, "correction"), "holm"))
    )
    assert main(["check-config", str(path)]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "models.fraud.alert.correction: invalid value 'holm'" in err
    assert "hint: `bonferroni` (default" in err


def test_budget_weights_written_as_a_list_asks_for_a_mapping() -> None:
    where, message, hint = one_problem(alert(**BUDGET, budget_weights=[1, 2]))
    assert where == "models.fraud.alert.budget_weights"
    assert message == "must be a mapping (key: value), got a list"
    assert "budget_weights: {window: 1, cusum: 1, bin_cusum: 0.3}" in hint


def test_a_negative_budget_weight_names_the_family_and_its_range() -> None:
    where, _, hint = one_problem(alert(**BUDGET, budget_weights={"cusum": -1}))
    assert where == "models.fraud.alert.budget_weights.cusum"
    assert hint.startswith("a relative weight above 0 and at most 1000000 (default 1)")
    assert hint.endswith("one cusum check against one check of each other family")


def test_the_examples_commented_budget_keys_parse_when_uncommented() -> None:
    import re

    import yaml

    from tests.unit.test_config import EXAMPLE

    keys = "false_alarms_per_month|events_per_second|correction|dependence|calibration_draws"
    pattern = re.compile(rf"^(\s+)# ((?:{keys}|budget_weights):)", re.MULTILINE)
    text, found = pattern.subn(r"\1\2", EXAMPLE.read_text())
    assert found == 6
    fraud = validate_config(yaml.safe_load(text)).models["fraud"]
    assert fraud.alert.has_budget and fraud.alert.dependence == "union"
    weights = fraud.alert.budget_weights
    assert (weights.window, weights.cusum, weights.bin_cusum) == (1, 1, 0.3)
