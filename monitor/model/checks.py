"""What each drift check compares with its threshold, named for the people who read it.

A threshold key (the config's and ``FeatureResult.crossed``'s vocabulary: ``psi``,
``ks_p_value``, ``missing_ratio``, ...) is compared with one quantity: a test's
``score`` (crossed above), its ``p_value`` (crossed below), or the
``missing_ratio_increase`` (the window's missing share minus the reference's, crossed
above). ``/status``, the webhook payloads, the Slack text and the log lines all say
which, so a statistic is never shown beside a p-value threshold unexplained.

>>> check_of("ks_p_value"), check_of("psi"), check_of("missing_ratio")
(('ks', 'p_value'), ('psi', 'score'), ('missing_ratio', 'missing_ratio_increase'))

(The one-line wording of a crossed check is ``DriftedFeature.describe`` in
:mod:`monitor.webhooks.event`, which the webhook formats may import.)
"""

from __future__ import annotations

from monitor.stats import REGISTRY, THRESHOLD_SCALES

#: The quantity a threshold of each scale is compared with.
_COMPARED = {"score": "score", "p_value": "p_value", "share": "missing_ratio_increase"}
MISSING_RATIO = "missing_ratio"


def check_of(key: str) -> tuple[str, str]:
    """``(test, compared)`` of a threshold key; the missing-ratio check is its own test.
    Keys of no drift test (a performance rule such as ``min``) compare the score."""
    if key not in THRESHOLD_SCALES:
        return key, "score"
    compared = _COMPARED[THRESHOLD_SCALES[key]]
    if key == MISSING_RATIO:
        return MISSING_RATIO, compared
    for test in REGISTRY.values():
        if key in (test.score_key, test.p_value_key):
            return test.name, compared
    raise KeyError(key)


def compared_value(
    compared: str, score: float, p_value: float | None, missing_increase: float | None
) -> float | None:
    """The value a check compared with its threshold."""
    if compared == "p_value":
        return p_value
    if compared == "missing_ratio_increase":
        return missing_increase
    return score
