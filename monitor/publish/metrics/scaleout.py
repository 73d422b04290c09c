"""The scale-out families, rendered at scrape time from the results store's report.

Only the replica that owns a model (stage 2) exports its row counts, watermark and buffer,
so ``sum by (model)`` over replicas never counts a model twice; every replica exports
``driftmon_model_owner`` for every model (1 where it owns it, 0 elsewhere), so
``sum by (model) (driftmon_model_owner) == 0`` is a model nobody runs. The internal
topic's lag is ``driftmon_consumer_lag_messages{topic="<group_id>.rows"}``. Every replica
that follows ``<group_id>.profiles`` (a model captures its reference) counts the records it
read there by outcome, ``driftmon_profile_records_total``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from monitor.publish.results import ResultsStore
from monitor.scaleout.profiles import OUTCOMES as PROFILE_OUTCOMES
from monitor.scaleout.status import OUTCOMES


class ScaleOutCollector:
    """Renders ownership and each owned model's reorder buffer (see the module docstring)."""

    def __init__(self, results: ResultsStore) -> None:
        self._results = results

    @staticmethod
    def _families() -> tuple[
        GaugeMetricFamily, CounterMetricFamily, CounterMetricFamily, GaugeMetricFamily,
        GaugeMetricFamily, CounterMetricFamily,
    ]:  # fmt: skip
        return (
            GaugeMetricFamily(
                "driftmon_model_owner",
                "1 on the replica that runs the model (scale-out stage 2), 0 on the others.",
                labels=["model"],
            ),
            CounterMetricFamily(
                "driftmon_partial_rows",
                "Rows (binned or raw) reaching the model's owner, by outcome (applied; "
                "duplicate: sent again after a stage-1 restart; late: behind their partition by "
                "more than the allowed lateness; rejected: binned against another reference or "
                "config).",
                labels=["model", "outcome"],
            ),
            CounterMetricFamily(
                "driftmon_watermark_forced_rows",
                "Rows released before the watermark passed them because the reorder buffer "
                "was full (kafka.scale_out.max_buffered_rows).",
                labels=["model"],
            ),
            GaugeMetricFamily(
                "driftmon_watermark_lag_seconds",
                "Event time between the newest row of the model and its watermark: how far "
                "behind the slowest source partition (plus the allowed lateness) it waits.",
                labels=["model"],
            ),
            GaugeMetricFamily(
                "driftmon_reorder_buffer_rows",
                "Rows of the model waiting in its owner's reorder buffer for the watermark.",
                labels=["model"],
            ),
            CounterMetricFamily(
                "driftmon_profile_records",
                "Records read from <group_id>.profiles (captured references), by outcome "
                "(used; garbled: not a readable profile; unknown_model: no configured model "
                "capturing its reference; other_config: written under another config; "
                "deleted: a tombstone).",
                labels=["outcome"],
            ),
        )

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterator[Metric]:
        report = self._results.scale_out()
        if report is None:
            return
        owner, rows, forced, lag, buffered, profiles = self._families()
        if report.profile_records:
            for outcome in PROFILE_OUTCOMES:
                profiles.add_metric([outcome], float(report.profile_records.get(outcome, 0)))
        for model, share in report.models.items():
            owner.add_metric([model], 1.0 if share.owned else 0.0)
            if not share.owned:
                continue
            for outcome in OUTCOMES:
                rows.add_metric([model, outcome], float(share.counts.get(outcome, 0)))
            forced.add_metric([model], float(share.counts.get("forced", 0)))
            if share.watermark_lag_seconds is not None:
                lag.add_metric([model], share.watermark_lag_seconds)
            buffered.add_metric([model], float(share.buffered_rows))
        yield from (owner, rows, forced, lag, buffered, profiles)
