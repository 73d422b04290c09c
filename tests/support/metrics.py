"""Reading a Prometheus ``/metrics`` text exposition in tests.

Parsing goes through ``prometheus_client``'s own parser, so a test reads exactly what a
scraper would; :func:`sample_value` finds a sample by name and a subset of its labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Sample:
    """One exposed sample: full sample name (``_total``, ``_bucket``... included)."""

    name: str
    labels: Mapping[str, str]
    value: float


def parse_samples(text: str) -> list[Sample]:
    """Every sample of an exposition, in the order it lists them."""
    return [
        Sample(sample.name, dict(sample.labels), float(sample.value))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def sample_value(samples: str | Iterable[Sample], name: str, **labels: str) -> float | None:
    """Value of the first sample named ``name`` carrying all of ``labels``; ``None`` if none.

    ``samples`` is an exposition's text or already parsed samples.
    """
    parsed = parse_samples(samples) if isinstance(samples, str) else samples
    for sample in parsed:
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
            return sample.value
    return None
