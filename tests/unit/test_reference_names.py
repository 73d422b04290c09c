"""Models that share one reference profile file are still named as the config names them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from monitor.config import validate_config
from monitor.demo import synthetic
from monitor.model.reference_file import load_references
from monitor.pipeline import Pipeline


def test_two_models_on_one_profile_file_each_report_under_their_own_name(
    tmp_path: Path,
) -> None:
    profile = tmp_path / "fraud.profile.json"
    synthetic.reference_profile(7, 20_000, source="test").save(profile)
    doc = yaml.safe_load(
        "models:\n" + synthetic.model_config_yaml(str(profile), events=1000, slide=500)
    )
    doc["models"]["fraud2"] = doc["models"][synthetic.MODEL]
    config = validate_config(doc)
    references = load_references(config)
    assert {name: ref.profile.model for name, ref in references.items() if ref.profile} == {
        "fraud": "fraud",
        "fraud2": "fraud2",
    }

    cols = synthetic.generate(np.random.default_rng(3), 2_000, drift=True)
    messages = [
        m.replace(b'"model": "fraud"', b'"model": "fraud2"').replace(
            b'"model":"fraud"', b'"model":"fraud2"'
        )
        for m in synthetic.to_events(cols, start_ts=1.7e9, step_seconds=0.01)
    ]
    assert all(b"fraud2" in m for m in messages)
    pipeline = Pipeline(config, references)
    outcome = pipeline.process(messages, np.zeros(len(messages)))
    assert outcome.evaluations
    assert {e.result.model for e in outcome.evaluations} == {"fraud2"}
    events = [e.drift_event for e in outcome.evaluations if e.drift_event is not None]
    assert events and {e.model for e in events} == {"fraud2"}
