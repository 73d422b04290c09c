"""Per-test threshold sections: ``thresholds`` (a model's), a feature's overrides, and
``min_effect``.

The keys, their defaults and how each is bounded belong to the statistics engine
(:class:`monitor.stats.DriftThresholds`, :data:`monitor.stats.THRESHOLD_SCALES` and
:data:`monitor.stats.effect.EFFECT_MEASURES`); the models here are generated from them, so
a test added there is configurable here with no second list to keep in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, create_model

from monitor.config.base import Strict
from monitor.stats import THRESHOLD_SCALES, DriftThresholds, ThresholdScale
from monitor.stats.effect import EFFECT_MEASURES

#: The value each kind of threshold accepts: scores are >= 0, p-values lie strictly
#: between 0 and 1, and the missing-ratio share difference within [0, 1].
_BOUNDED: dict[ThresholdScale, Any] = {
    "score": Annotated[float, Field(ge=0)],
    "p_value": Annotated[float, Field(gt=0, lt=1)],
    "share": Annotated[float, Field(ge=0, le=1)],
}


class ThresholdTable(Strict):
    """Base of the generated sections: one optional number per key, ``null`` for none."""

    if TYPE_CHECKING:
        # The fields are generated, so type checkers cannot see them; read them by name.
        def __getattr__(self, key: str) -> float | None: ...


class EffectTable(ThresholdTable):
    """Base of ``min_effect``: what :func:`monitor.stats.effect.apply_min_effect` takes."""

    def measures(self) -> dict[str, float]:
        """The measures that are set, e.g. ``{"psi": 0.1}``."""
        return {k: float(v) for k, v in self.model_dump().items() if v is not None}


def _section(
    name: str,
    doc: str,
    base: type[ThresholdTable],
    scales: Mapping[str, ThresholdScale],
    defaults: Mapping[str, float | None],
) -> Any:
    """A section model with one optional, bounded number per key of ``scales``."""
    fields: dict[str, Any] = {
        key: (_BOUNDED[scale] | None, defaults.get(key)) for key, scale in scales.items()
    }
    return create_model(name, __base__=base, __module__=__name__, __doc__=doc, **fields)


# The sections' docstrings, which are also their descriptions in the JSON schema.
_THRESHOLDS_DOC = (
    "Thresholds per test; ``null`` means the test is computed and exported but not alerted on.\n"
    "\n"
    "Scores (psi, ks, kl, js, wasserstein) drift when above; p-values when below. The\n"
    "missing-ratio check compares the window's missing ratio with the reference's."
)
_PARTIAL_DOC = "Per-feature threshold overrides: keys given here replace the model's values."
_MIN_EFFECT_DOC = (
    "Smallest effect worth an alarm, per effect measure (see ``monitor.stats.effect``).\n"
    "\n"
    "A drifted feature stays drifted only when one of the named measures it computes reaches\n"
    "its minimum; ``missing_ratio`` also requires the missing-ratio difference to reach its\n"
    "value. In a feature's ``min_effect`` the keys given replace the model's (``null``\n"
    "removes a measure for that feature)."
)

# Type checkers see the bases (fields read by name); at run time these are generated classes
# with the same names, so reprs, pickles and the JSON schema read as if written out.
if TYPE_CHECKING:
    ThresholdsConfig = ThresholdTable
    PartialThresholds = ThresholdTable
    MinEffectConfig = EffectTable
else:
    ThresholdsConfig = _section(
        "ThresholdsConfig", _THRESHOLDS_DOC, ThresholdTable, THRESHOLD_SCALES,
        asdict(DriftThresholds()),
    )  # fmt: skip
    PartialThresholds = _section(
        "PartialThresholds", _PARTIAL_DOC, ThresholdTable, THRESHOLD_SCALES, {}
    )
    MinEffectConfig = _section(
        "MinEffectConfig", _MIN_EFFECT_DOC, EffectTable,
        {measure: THRESHOLD_SCALES[measure] for measure in EFFECT_MEASURES}, {},
    )  # fmt: skip
