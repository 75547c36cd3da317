"""Whether this is a CI run, where a test must fail rather than skip for want of something.

A developer's machine may lack something a test needs (Java, eventfd, a backend); skipping is
fair there.  In CI (``CI`` set to ``1``, ``true`` or ``yes``, as ``.ci/run`` does) the same
test must fail instead, or a run that never exercised the piece would pass
(:func:`zklock.testing.plugin.skip_outside_ci`).
"""

from __future__ import annotations

import os

__all__ = ["in_ci"]


def in_ci() -> bool:
    """True when the environment says this is a CI run (``CI=1``, ``true`` or ``yes``)."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")
