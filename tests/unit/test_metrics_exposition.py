"""``/metrics`` with the drift families cached per model: the same body as the plain
``prometheus_client`` encoder over the same registry, in every format it negotiates, as
models count, evaluate, reset and leave; and only changed models are rendered again."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client.exposition import choose_encoder

from monitor.model.status import HotCounts
from monitor.publish.metrics import drift, exposition
from monitor.publish.metrics.exposition import render_metrics
from monitor.publish.results import ResultsStore
from tests.support.results import fake_performance, fake_status, fake_version
from tests.unit.test_metrics import build, populated

ACCEPTS = (
    "",
    "text/plain; version=0.0.4",
    "application/openmetrics-text; version=1.0.0",
    "application/openmetrics-text; version=1.0.0; escaping=allow-utf-8",
    "text/plain; version=1.0.0; escaping=underscores",
)


def uncached(registry: object, accept: str) -> tuple[bytes, str]:
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type  # type: ignore[arg-type]


@pytest.mark.parametrize("accept", ACCEPTS)
def test_every_family_is_exposed_as_the_plain_encoder_writes_it(accept: str) -> None:
    registry, _ = populated()  # every family with samples: versions, performance, scale-out
    assert render_metrics(registry, accept) == uncached(registry, accept)
    assert render_metrics(registry, accept) == uncached(registry, accept)  # from the cache


def many(store: ResultsStore) -> None:
    statuses = [dataclasses.replace(fake_status(f"m{i:03d}"), model=f"m{i:03d}") for i in range(40)]
    statuses[3] = dataclasses.replace(statuses[3], performance=fake_performance())
    statuses[5] = dataclasses.replace(statuses[5], version="v2", versions=(fake_version("v2"),))
    statuses[7] = fake_status("m007", with_result=False)
    store.publish(*statuses)


@pytest.mark.parametrize("accept", ACCEPTS[::2])
def test_a_cached_scrape_follows_every_change_of_the_picture(accept: str) -> None:
    store = ResultsStore()
    registry, _, _, _ = build(store)
    many(store)
    steps: list[Callable[[], None]] = [
        lambda: store.count(
            [(f"m{i:03d}", HotCounts(100 + i, i, 50, 0.5)) for i in range(0, 40, 3)]
        ),
        lambda: store.publish(dataclasses.replace(fake_status("m010"), evaluations=99)),
        lambda: store.rebase(fake_status("m011"), fake_status("m011", with_result=False)),
        lambda: store.withdraw("m012", "m013"),
        lambda: store.count([("m000", HotCounts(5000, 7, 20, 1.0))]),
    ]
    assert render_metrics(registry, accept) == uncached(registry, accept)
    for step in steps:
        step()
        assert render_metrics(registry, accept) == uncached(registry, accept)


def test_a_scrape_renders_again_only_the_models_whose_status_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = ResultsStore()
    registry, _, _, _ = build(store)
    many(store)
    render_metrics(registry, "")
    rendered: list[str] = []
    real = drift.add_model

    def spy(families: drift.Families, model: str, *args: Any) -> None:
        rendered.append(model)
        real(families, model, *args)

    monkeypatch.setattr(exposition, "add_model", spy)
    store.count([(f"m{i:03d}", HotCounts(900, 0, 10, 0.1)) for i in range(40)])  # only counts
    render_metrics(registry, "")
    assert rendered == []
    store.publish(dataclasses.replace(fake_status("m020"), evaluations=4))
    body, _ = render_metrics(registry, "")
    assert rendered == ["m020"]
    assert b'driftmon_evaluations_total{model="m020"} 4.0' in body
