"""Building blocks every config section shares.

Owns the strict base model, the ``driftmon`` validation error a section raises for a
problem with its own message and hint, the did-you-mean helper, and the character sets of
names that become Prometheus label values or Kafka topic names.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

#: The pydantic error type of :func:`problem`; ``monitor.config.problems`` renders its
#: message and hint as written.
PROBLEM_TYPE = "driftmon"

# Label values: letters, digits and a few separators; a letter or underscore first so names
# never look like numbers in PromQL, and short enough to keep dashboards readable.
LABEL_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$"
LABEL_HINT = (
    "use 1 to 64 characters from letters, digits and _ . : - starting with a letter or _ "
    "(names become Prometheus label values)"
)
LabelName = Annotated[str, Field(pattern=LABEL_PATTERN)]
# Kafka's own topic rules.
TOPIC_PATTERN = r"^[A-Za-z0-9._-]{1,249}$"


def problem(message: str, hint: str = "", field: str = "") -> PydanticCustomError:
    """A validation error that carries driftmon's hint (and a sub-key for model checks)."""
    return PydanticCustomError(PROBLEM_TYPE, message, {"hint": hint, "field": field})


def nearest(word: str, choices: Iterable[str], what: str) -> str:
    """A did-you-mean hint for ``word`` that lists the valid ``choices`` as ``what``."""
    options = [str(c) for c in choices]
    near = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    listed = ", ".join(options)
    if near:
        return f"did you mean {near[0]!r}? {what}: {listed}"
    return f"{what}: {listed}" if options else ""


class Strict(BaseModel):
    """Frozen, no unknown keys; numbers are accepted where a string is expected (env values)."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)
