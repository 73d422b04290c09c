"""Per-test threshold sections: ``thresholds`` (a model's), a feature's overrides, and
``min_effect``.

Scores (psi, ks, kl, js, wasserstein) drift when above their threshold, p-values when
below; ``missing_ratio`` compares the window's missing ratio with the reference's.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from monitor.config.base import Strict

_PValue = Annotated[float, Field(gt=0, lt=1)]
_Score = Annotated[float, Field(ge=0)]


class ThresholdsConfig(Strict):
    """Thresholds per test; ``null`` means the test is computed and exported but not alerted on.

    Scores (psi, ks, kl, js, wasserstein) drift when above; p-values when below. The
    missing-ratio check compares the window's missing ratio with the reference's.
    """

    psi: _Score | None = 0.2
    ks: _Score | None = None
    ks_p_value: _PValue | None = 0.001
    kl: _Score | None = None
    js: _Score | None = 0.1
    wasserstein: _Score | None = None
    chi2_p_value: _PValue | None = 0.001
    missing_ratio: Annotated[float, Field(ge=0, le=1)] | None = 0.1


class PartialThresholds(Strict):
    """Per-feature threshold overrides: keys given here replace the model's values."""

    psi: _Score | None = None
    ks: _Score | None = None
    ks_p_value: _PValue | None = None
    kl: _Score | None = None
    js: _Score | None = None
    wasserstein: _Score | None = None
    chi2_p_value: _PValue | None = None
    missing_ratio: Annotated[float, Field(ge=0, le=1)] | None = None


class MinEffectConfig(Strict):
    """Smallest effect worth an alarm, per effect measure (see ``monitor.stats.effect``).

    A drifted feature stays drifted only when one of the named measures it computes reaches
    its minimum; ``missing_ratio`` also requires the missing-ratio difference to reach its
    value. In a feature's ``min_effect`` the keys given replace the model's (``null``
    removes a measure for that feature).
    """

    psi: _Score | None = None
    kl: _Score | None = None
    js: _Score | None = None
    ks: _Score | None = None
    wasserstein: _Score | None = None
    missing_ratio: Annotated[float, Field(ge=0, le=1)] | None = None

    def measures(self) -> dict[str, float]:
        """The measures that are set, e.g. ``{"psi": 0.1}``."""
        return {k: float(v) for k, v in self.model_dump().items() if v is not None}
