"""How much the property, fuzz and soak tests do: small by default, large on request.

* ``FASTLR_FUZZ_EXAMPLES=N``: every hypothesis test runs ``N`` random examples
  instead of its small fixed (derandomised) default.
* ``FASTLR_SOAK=1``: the soak tests run at full size (8 threads × 25 fits,
  4 processes × 25 fits, 1,000 fit + predict cycles) instead of scaled down.
"""

import os

from hypothesis import settings

FUZZ_EXAMPLES = int(os.environ.get("FASTLR_FUZZ_EXAMPLES") or 0)
SOAK = os.environ.get("FASTLR_SOAK", "") not in ("", "0")


def examples(default):
    """hypothesis settings: ``default`` examples, or FASTLR_FUZZ_EXAMPLES when set."""
    return settings(max_examples=FUZZ_EXAMPLES or default)


def soak(full, scaled):
    """The full-size figure when FASTLR_SOAK=1, else the scaled-down one."""
    return full if SOAK else scaled
