"""``/metrics`` with many models: each model's drift samples rendered once per status.

At 1,000 models x 20 features the drift families hold about 170,000 samples; rendering
them through ``prometheus_client`` one by one at every scrape took seconds. Nearly all of
them change only when a model's status is published (an evaluation, an alert, a captured
reference), so :class:`DriftText` keeps each model's text per family, rendered by the
same ``prometheus_client`` encoder the scrape asked for, and renders afresh only what
changed and the :data:`~monitor.publish.metrics.drift.HOT_FAMILIES` (four samples a
model). :func:`render_metrics` splices that text where the collector's families stood:
the body is the one the plain encoder would write for the same picture.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric

from monitor.publish.metrics.drift import (
    HOT_FAMILIES,
    DriftCollector,
    DriftMarker,
    add_hot,
    add_model,
    deferred_drift,
)

Encoder = Callable[[Any], bytes]

# The counters laid over a status by the hot counts: not part of a cached model's key.
_HOT_TOTALS = ("events_total", "late_events")


class _Listed:
    """Families as a collector, for an encoder."""

    def __init__(self, metrics: Sequence[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self._metrics)


def _body(encoder: Encoder, metrics: Sequence[Metric], trailer: str) -> str:
    text = encoder(_Listed(metrics)).decode()
    return text[: len(text) - len(trailer)] if trailer else text


class DriftText:
    """The drift families' text for one collector, cached per model and content type."""

    def __init__(self, collector: DriftCollector) -> None:
        # weakly: the cache is kept per collector in a WeakKeyDictionary
        self._collector_ref = weakref.ref(collector)
        self._lock = threading.Lock()
        # content type -> (trailer, family headers); content type -> model -> (status,
        # other counters, text per family)
        self._frames: dict[str, tuple[str, list[str]]] = {}
        self._models: dict[str, dict[str, tuple[object, tuple[float, ...], list[str]]]] = {}

    @property
    def _collector(self) -> DriftCollector:
        collector = self._collector_ref()
        assert collector is not None  # noqa: S101 - rendered for a live collector only
        return collector

    def _frame(self, encoder: Encoder, content_type: str) -> tuple[str, list[str]]:
        frame = self._frames.get(content_type)
        if frame is None:
            trailer = encoder(_Listed([])).decode()
            _, ordered = self._collector.family_set()
            frame = (trailer, [_body(encoder, [m], trailer) for m in ordered])
            self._frames[content_type] = frame
        return frame

    def render(self, encoder: Encoder, content_type: str) -> str:
        """The collector's families for the current picture, as ``encoder`` writes them."""
        with self._lock:
            return self._render(encoder, content_type)

    def _render(self, encoder: Encoder, content_type: str) -> str:
        trailer, headers = self._frame(encoder, content_type)
        results = self._collector.results
        snapshot = results.snapshot()
        published, _ = snapshot.parts()
        cached = self._models.setdefault(content_type, {})
        hot, ordered = self._collector.family_set()
        names = [m.name for m in ordered]
        per_model: list[list[str]] = []
        for model, status_as_published in published.items():
            status = snapshot[model]
            total = results.counters(status)
            others = tuple(v for k, v in total.items() if k not in _HOT_TOTALS)
            entry = cached.get(model)
            if entry is None or entry[0] is not status_as_published or entry[1] != others:
                families, model_ordered = self._collector.family_set()
                add_model(families, model, status, total)
                text = _split(_body(encoder, model_ordered, trailer), headers)
                entry = cached[model] = (status_as_published, others, text)
            per_model.append(entry[2])
            add_hot(hot, model, status, total)
        for gone in set(cached) - set(published):
            del cached[gone]
        hot_text = _split(_body(encoder, ordered, trailer), headers)
        out: list[str] = []
        for i, name in enumerate(names):
            out.append(headers[i])
            if name in HOT_FAMILIES:
                out.append(hot_text[i])
            else:
                out.extend(texts[i] for texts in per_model)
        return "".join(out)


def _split(text: str, headers: Sequence[str]) -> list[str]:
    """The sample lines of each family in ``text`` (families in ``headers``' order, each
    starting with its header)."""
    parts: list[str] = []
    start = len(headers[0])
    for header in headers[1:]:
        stop = text.index(header, start)
        parts.append(text[start:stop])
        start = stop + len(header)
    parts.append(text[start:])
    return parts


_TEXTS: weakref.WeakKeyDictionary[DriftCollector, DriftText] = weakref.WeakKeyDictionary()
_TEXTS_LOCK = threading.Lock()


def drift_text(collector: DriftCollector) -> DriftText:
    """The text cache of ``collector`` (one for the collector's life)."""
    with _TEXTS_LOCK:
        text = _TEXTS.get(collector)
        if text is None:
            text = _TEXTS[collector] = DriftText(collector)
        return text


def render_metrics(registry: Any, accept: str) -> tuple[bytes, str]:
    """The ``/metrics`` body for an ``Accept`` header and its content type: the encoder
    ``prometheus_client`` picks, with each drift collector's families from its cache."""
    encoder, content_type = choose_encoder(accept)
    with deferred_drift():
        metrics = list(registry.collect())
    trailer = encoder(_Listed([])).decode()
    out: list[str] = []
    start = 0
    for i, metric in enumerate(metrics):
        if isinstance(metric, DriftMarker):
            out.append(_body(encoder, metrics[start:i], trailer))
            out.append(drift_text(metric.collector).render(encoder, content_type))
            start = i + 1
    out.append(encoder(_Listed(metrics[start:])).decode())
    return "".join(out).encode(), content_type
