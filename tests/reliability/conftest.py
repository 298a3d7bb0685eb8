"""Reliability suite settings: fuzzing profiles, and the helpers every reliability test shares.

``reliability`` (CI): 200 examples per property. ``reliability-long`` (``python benchmarks/run.py reliability``, or
``NBO_FUZZ_PROFILE=reliability-long``): ``NBO_FUZZ_EXAMPLES`` examples per property (default 5,000).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).resolve().parent))  # snapshots, reliability_helpers

_SUPPRESS = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much,
             HealthCheck.data_too_large]
settings.register_profile("reliability", deadline=None, max_examples=200, suppress_health_check=_SUPPRESS)
settings.register_profile("reliability-long", deadline=None, suppress_health_check=_SUPPRESS,
                          max_examples=int(os.environ.get("NBO_FUZZ_EXAMPLES", "5000")))
FUZZ = settings.get_profile(os.environ.get("NBO_FUZZ_PROFILE", "reliability"))
