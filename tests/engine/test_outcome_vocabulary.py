"""One vocabulary for how a planned run ended: ``core.status.Outcome`` (the recorded run statuses plus LOCKED and
SKIPPED, which are never stored); the engine produces its members, not loose strings."""

from __future__ import annotations

from pathlib import Path

import notebook_orch.engine.executor as executor_mod
from notebook_orch.core.status import Outcome, RunStatus
from notebook_orch.engine.executor import RunOutcome, RunRequest, execute_run
from notebook_orch.engine.runner import RunPlanReport
from notebook_orch.errors import PartitionLocked

ENGINE = Path(executor_mod.__file__).parent


def test_outcomes_are_the_end_states_of_a_run_plus_two_that_never_start() -> None:
    ended = {s.value for s in RunStatus} - {"RUNNING", "WAITING"}
    assert {o.value for o in Outcome} == ended | {"LOCKED", "SKIPPED"}
    assert Outcome.LOCKED == "LOCKED" and f"{Outcome.SKIPPED}" == "SKIPPED"  # words, as JSON and people see them


def test_a_locked_partition_is_the_locked_outcome(monkeypatch, tmp_path: Path) -> None:
    class Store:
        def start_run(self, **kwargs: object) -> None:
            raise PartitionLocked("a", "p", "other-run")

    monkeypatch.setattr(executor_mod, "store_for", lambda url: Store())
    outcome = execute_run(RunRequest(project_root=str(tmp_path), store_url="sqlite://", notebook="n.ipynb",
                                     partition="p", assets=("a",), code_versions={}))
    assert outcome.status is Outcome.LOCKED and "other-run" in outcome.error


def test_the_report_counts_every_outcome_in_its_words() -> None:
    outcomes = tuple(RunOutcome("n", str(i), ("a",), o) for i, o in enumerate(Outcome))
    report = RunPlanReport(outcomes, 1.0)
    assert report.summary() == "5 run(s) in 1.0 s: 1 success, 1 failed, 1 canceled, 1 locked, 1 skipped"
    assert not report.ok


def test_the_engine_writes_no_outcome_as_a_loose_string() -> None:
    for path in ENGINE.glob("*.py"):
        text = path.read_text()
        for word in ("LOCKED", "SKIPPED"):
            assert f'"{word}"' not in text, f"{path.name} spells {word} as a string; use core.status.Outcome"
