"""Issue 10 (reliability): the long versions of tests/reliability, with their figures.

Each part lives in its own module (reliability_fuzz: fuzzing, the hostile corpus, contention, secrets;
reliability_crashes: crashes at every publishing step and at random moments, duplicate requests, disk and store
faults); this group calls them in turn. Figures measured on a loaded machine are marked so by the caller's report.
"""

from __future__ import annotations


def run() -> None:
    import reliability_crashes
    import reliability_fuzz

    reliability_fuzz.run_all()
    reliability_crashes.run_all()
