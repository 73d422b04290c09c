"""A model with a ``versions`` section: one monitor per model version.

The rows of each batch are routed by version (:class:`~monitor.model.versions.
VersionRouter`); each version kept has its own :class:`~monitor.model.monitor.
ModelMonitor` (window, alerting) against its configured profile or one captured from its
own first rows. Its checkpoint nests the other versions' states in the default
monitor's (layout in :mod:`monitor.model.state`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from monitor.config import CaptureReference
from monitor.errors import CheckpointError, ProfileError
from monitor.ingest.decode import CategoryCodes, ModelColumns
from monitor.model.evaluation import Evaluation, ModelStep
from monitor.model.monitor import ModelMonitor
from monitor.model.snapshot import version_status
from monitor.model.state import ModelState, nest_version, unnest_version
from monitor.model.status import HotCounts, ModelStatus, VersionStatus
from monitor.model.versions import DEFAULT_VERSION, Action, VersionRouter
from monitor.stats import ReferenceProfile

logger = logging.getLogger(__name__)


def with_versions(
    columns: ModelColumns, header_versions: Sequence[str | None] | None
) -> ModelColumns:
    """Columns whose ``versions`` has one entry per row: the event's version field, else
    the message's ``version`` header, else ``None``."""
    versions = columns.versions
    rows = len(columns.ts)
    if len(versions) != rows:
        versions = [None] * rows
    if header_versions is not None and None in versions:
        from_header = [header_versions[i] for i in columns.msg_index.tolist()]
        versions = [v if v is not None else h for v, h in zip(versions, from_header, strict=True)]
    if versions is columns.versions:
        return columns
    return replace(columns, versions=versions)


@dataclass
class _Retired:
    """Counters of versions evicted from a model, so the model's counters never go back."""

    events: int = 0
    evaluations: int = 0
    late: int = 0
    retrain_triggers: int = 0

    def add(self, monitor: ModelMonitor) -> None:
        self.events += monitor.events_seen
        self.evaluations += monitor.evaluations
        self.late += monitor.late_events
        self.retrain_triggers += monitor.retrain_triggers


class VersionedModel:
    """The per-version monitors of one model with a ``versions`` section.

    ``default`` (the pipeline's monitor of the model) holds the model's top-level
    reference: rows without a version and, with ``on_new_version: fallback``, rows of
    unlisted versions. Every other version kept by the :class:`~monitor.model.versions.
    VersionRouter` has its own :class:`ModelMonitor` (window, alerting), against its
    configured profile or one captured from its own first ``capture_events`` rows. The
    performance join stays on ``default``: labels carry no version.
    """

    def __init__(
        self,
        default: ModelMonitor,
        profiles: Mapping[str, ReferenceProfile],
    ) -> None:
        versions = default.config.versions
        if versions is None:
            raise ValueError(f"model {default.name!r} has no versions section")
        missing = sorted(set(versions.references) - set(profiles))
        if missing:
            raise ProfileError(
                f"no reference profile loaded for version(s) {', '.join(missing)} of model "
                f"{default.name!r}"
            )
        self.name = default.name
        self.settings = versions
        self.default = default
        self._profiles = {v: profiles[v] for v in versions.references}
        self.router = VersionRouter(
            versions.references,
            on_new_version=versions.on_new_version,
            capture_events=versions.capture_events,
            max_versions=versions.max_versions,
        )
        self.monitors: dict[str, ModelMonitor] = {DEFAULT_VERSION: default}
        for version in versions.references:
            self.monitors[version] = self.new_monitor(version)
        self.active: str | None = None
        self.ignored = 0
        self.retired = _Retired()

    def fresh(self) -> VersionedModel:
        """The same model with empty state (its partitions went to another replica)."""
        return VersionedModel(self.default.fresh(), self._profiles)

    # -- the model interface (see monitor.model.model) -----------------------------------

    @property
    def reads_versions(self) -> bool:
        return True

    @property
    def category_codes(self) -> tuple[CategoryCodes, ...] | None:
        """None: each version encodes against its own profile, and the columnar scanner
        does not read the version field."""
        return None

    @property
    def reference_ready(self) -> bool:
        return self.default.reference_ready

    @property
    def calibration_pending(self) -> bool:
        return self.default.calibration_pending

    def ensure_calibrated(self) -> None:
        """The default reference's calibration (each version calibrates on its first rows)."""
        self.default.ensure_calibrated()

    def feed(
        self, columns: ModelColumns, header_versions: Sequence[str | None] | None = None
    ) -> ModelStep:
        """One batch: labels to the default monitor's join, rows routed by version."""
        columns = with_versions(columns, header_versions)
        drift_rows, label_only = self.default.split_labels(columns)
        performance = self.default.ingest_performance(columns, label_only)
        ignored_before = self.ignored
        evaluations = self.ingest(drift_rows, drift_rows.versions)
        return ModelStep(evaluations, performance, self.ignored - ignored_before)

    # -- monitors ----------------------------------------------------------------------

    def new_monitor(self, version: str) -> ModelMonitor:
        """An empty monitor of a version: its configured profile, or a capture."""
        base = self.default
        profile = self._profiles.get(version)
        reference: str | CaptureReference = (
            self.settings.references[version]
            if profile is not None
            else CaptureReference(capture_events=self.settings.capture_events)
        )
        config = base.config.model_copy(
            update={"reference": reference, "performance": None, "versions": None}
        )
        return ModelMonitor(
            self.name,
            config,
            profile,
            numeric_columns=base.numeric_columns,
            categorical_columns=base.categorical_columns,
            version=version,
        )

    def _drop(self, version: str) -> None:
        monitor = self.monitors.pop(version, None)
        if monitor is not None:
            self.retired.add(monitor)
            logger.info(
                "model version forgotten (max_versions reached)",
                extra={"model": self.name, "version": version},
            )

    @property
    def active_monitor(self) -> ModelMonitor:
        """The monitor of the active version (the default one for fallback versions)."""
        active = self.active
        return self.monitors.get(active, self.default) if active else self.default

    def _activate(self, version: str) -> None:
        previous, self.active = self.active, version
        if previous is None or previous == version:
            return
        # A new version is deployed: a retrain grace period ends with it.
        for monitor in self.monitors.values():
            monitor.alerting.clear_grace()
        logger.info(
            "active model version changed",
            extra={"model": self.name, "from_version": previous, "to_version": version},
        )

    # -- rows --------------------------------------------------------------------------

    def ingest(self, columns: ModelColumns, versions: Sequence[str | None]) -> list[Evaluation]:
        """Route one batch of drift rows by version and feed each version's monitor."""
        if not versions:
            return []
        route = self.router.route(versions)
        for version in route.evicted:
            self._drop(version)
        whole = len(route.slices) == 1
        evaluations: list[Evaluation] = []
        for part in route.slices:
            if part.action is Action.SKIP:
                self.ignored += len(part.rows)
                continue
            key = DEFAULT_VERSION if part.action is Action.FALLBACK else part.version
            monitor = self.monitors.get(key)
            if monitor is None:
                monitor = self.monitors[key] = self.new_monitor(key)
                if part.action is Action.CAPTURE:
                    logger.info(
                        "new model version: capturing its reference from the stream",
                        extra={
                            "model": self.name,
                            "version": key,
                            "events": self.settings.capture_events,
                        },
                    )
            rows = columns if whole else columns.take(part.rows)
            label = None if part.version == DEFAULT_VERSION else part.version
            if monitor is self.default:
                # Rows of fallback versions are evaluated against the default reference.
                monitor.alerting.set_version(label)
            found = monitor.ingest(rows)
            evaluations.extend(replace(e, version=label) for e in found)
            if part.action is Action.CAPTURE and monitor.reference_ready:
                self.router.mark_ready(key)
        if self.router.active_version is not None:
            self._activate(self.router.active_version)
        return evaluations

    # -- reporting ---------------------------------------------------------------------

    def _version_status(self, version: str, monitor: ModelMonitor) -> VersionStatus:
        if version == DEFAULT_VERSION:
            reference = "default"
        elif version in self._profiles:
            reference = "configured"
        else:
            reference = "captured"
        return version_status(version, reference, monitor)

    @property
    def events_seen(self) -> int:
        return self.retired.events + sum(m.events_seen for m in self.monitors.values())

    @property
    def steady(self) -> bool:
        """Never: a batch may move the active version or its versions' lines."""
        return False

    def hot_counts(self) -> HotCounts:
        return HotCounts.of(self.status())

    def status(self) -> ModelStatus:
        """The active version's status; counters summed over every version."""
        monitors = self.monitors.values()
        retired = self.retired
        active = self.active_monitor.status()
        return replace(
            active,
            events_total=self.events_seen,
            evaluations=retired.evaluations + sum(m.evaluations for m in monitors),
            late_events=retired.late + sum(m.late_events for m in monitors),
            retrain_triggers=retired.retrain_triggers + sum(m.retrain_triggers for m in monitors),
            performance=(
                self.default.performance.report() if self.default.performance is not None else None
            ),
            version=self.active,
            versions=tuple(self._version_status(v, m) for v, m in self.monitors.items()),
            ignored_version_events=self.ignored,
        )

    # -- checkpoints -------------------------------------------------------------------

    def state(self, partitions: Sequence[str]) -> ModelState:
        """The default monitor's state with the router and every other version's state.

        Version ``i``'s arrays are stored under ``version.<i>/<key>``; everything else
        under the ``versions`` scalar, so a checkpoint without it (taken before the model
        had versions) restores the default reference alone.
        """
        state = self.default.state(partitions)
        entries: list[dict[str, Any]] = []
        for i, (version, monitor) in enumerate(self.monitors.items()):
            if version == DEFAULT_VERSION:
                continue
            entries.append(nest_version(state, version, i, monitor.state(partitions)))
        state.scalars["versions"] = {
            "router": self.router.state_dict(),
            "active": self.active,
            "ignored": self.ignored,
            "retired": [
                self.retired.events,
                self.retired.evaluations,
                self.retired.late,
                self.retired.retrain_triggers,
            ],
            "monitors": entries,
        }
        return state

    def restore(self, state: ModelState) -> None:
        """Resume every version; raises ``CheckpointError`` when the default does not fit.

        A version whose own state does not fit the running config (its profile changed)
        is dropped with a warning: a listed version starts again with an empty window, an
        unlisted one is captured again when it shows up.
        """
        self.default.restore(state)
        self.monitors = {DEFAULT_VERSION: self.default}
        self.router = VersionRouter(
            self.settings.references,
            on_new_version=self.settings.on_new_version,
            capture_events=self.settings.capture_events,
            max_versions=self.settings.max_versions,
        )
        self.active, self.ignored, self.retired = None, 0, _Retired()
        saved = state.scalars.get("versions")
        if saved is not None:
            try:
                self._restore_versions(state, saved)
            except (KeyError, TypeError, ValueError) as exc:
                raise CheckpointError(
                    f"checkpoint of model {self.name!r} has malformed version state ({exc!r})"
                ) from None
        for version in self.router.versions:
            if version in self.monitors:
                continue
            if version in self._profiles:
                self.monitors[version] = self.new_monitor(version)
            else:
                self.router.forget(version)
        for version in self._profiles:
            self.monitors.setdefault(version, self.new_monitor(version))

    def _restore_versions(self, state: ModelState, saved: Mapping[str, Any]) -> None:
        self.router.load_state_dict(saved["router"])
        self.active = None if saved["active"] is None else str(saved["active"])
        self.ignored = int(saved["ignored"])
        self.retired = _Retired(*(int(n) for n in saved["retired"]))
        for entry in saved["monitors"]:
            version, sub = unnest_version(state, entry)
            monitor = self.new_monitor(version)
            try:
                monitor.restore(sub)
            except CheckpointError as exc:
                logger.warning(
                    "checkpointed state of a model version does not fit the config; "
                    "the version starts again",
                    extra={"model": self.name, "version": version, "error": str(exc)},
                )
                self.router.forget(version)
                continue
            self.monitors[version] = monitor
            if monitor.reference_ready and not self.router.is_ready(version):
                self.router.mark_ready(version)
