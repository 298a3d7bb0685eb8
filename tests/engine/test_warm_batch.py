"""A warm run sends its cells in one execute request (engine/warm_batch.py): its output notebook must be the one
the cell-by-cell path writes — same outputs under the same cells, same papermill statuses, same failure — and the
notebook is written once. The reference is a fresh-kernel run of the same notebook (nbclient, one request a cell)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "execution"))
from execution_helpers import asset_cell, make_project, open_project, setup_cell  # noqa: E402

from notebook_orch.core.planning import PartitionSelection  # noqa: E402

pytestmark = pytest.mark.kernel

SETUP = setup_cell("import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)\nfrom IPython.display "
                   "import display, Markdown\ndisplay(Markdown('**shown**'))\n6 * 7")
AWAITS = setup_cell("import asyncio\nawait asyncio.sleep(0)\nprint('awaited')")
ALLOWED = nbformat.v4.new_code_cell("raise ValueError('allowed to fail')",
                                    metadata={"tags": ["nbo-setup", "raises-exception"]})
FAILS = setup_cell("print('before the error')\nraise RuntimeError('set-up broke')")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = {}
    for mode in ("fresh", "warm"):
        root = tmp_path_factory.mktemp(mode)
        make_project(root, {
            "good": [SETUP, AWAITS, "unused = 1\nunused", asset_cell("good_value", 'good_value = {"ok": 1}')],
            # papermill fails a run whose output holds an error, even from a cell allowed to raise: both paths must
            # still run the cells after it and agree on everything
            "allowed": [ALLOWED, setup_cell("print('after the allowed error')"),
                        asset_cell("allowed_value", 'allowed_value = {"ok": 1}')],
            "bad": [FAILS, asset_cell("bad_value", 'bad_value = {"never": 1}'), setup_cell("print('never')")],
        })
        with open_project(root) as project:
            report = project.materialize("good_value,bad_value,allowed_value", workers=1, mode=mode,
                                         partitions=PartitionSelection(keys=("2013-01-02",)))
        out[mode] = {o.assets[0]: o for o in report.outcomes}
    return out


def normalized(path: str) -> list[dict]:
    """Cells as a person reads them: outputs, papermill status, whether a count was given; run ids and times out."""
    def clean(node: object) -> object:
        if isinstance(node, str):
            node = re.sub(r"run [0-9a-z]{20,}", "run ID", node)
            node = re.sub(r"In ?\[\d+\]", "In[N]", node)
            return re.sub(r" in \d+\.\d+ s", " in T s", node)
        if isinstance(node, list):
            return clean("".join(node)) if all(isinstance(v, str) for v in node) else [clean(v) for v in node]
        if isinstance(node, dict):
            return {k: "N" if k == "execution_count" else clean(v) for k, v in node.items()}
        return node

    cells = []
    for cell in json.loads(Path(path).read_text(encoding="utf-8"))["cells"]:
        source = clean(cell["source"])
        outputs = clean(cell.get("outputs", []))
        cells.append({"source": "injected" if "nbo_run" in source else source, "outputs": outputs,
                      "status": cell["metadata"].get("papermill", {}).get("status"),
                      "exception": cell["metadata"].get("papermill", {}).get("exception"),
                      "counted": cell.get("execution_count") is not None})
    return cells


def test_a_warm_run_writes_the_same_output_notebook_as_a_cell_by_cell_run(runs: dict) -> None:
    fresh, warm = runs["fresh"]["good_value"], runs["warm"]["good_value"]
    assert (fresh.status, warm.status) == ("SUCCESS", "SUCCESS"), (fresh.error, warm.error)
    assert normalized(warm.output_path) == normalized(fresh.output_path)
    cells = normalized(warm.output_path)
    setup = next(c for c in cells if "to stdout" in c["source"])
    kinds = [(o["output_type"], o.get("name")) for o in setup["outputs"]]
    assert kinds == [("stream", "stdout"), ("stream", "stderr"), ("display_data", None), ("execute_result", None)]
    assert any(o.get("text") == "awaited\n" for c in cells for o in c["outputs"])  # top-level await ran


def test_warm_execution_counts_go_up_by_one_per_executed_cell(runs: dict) -> None:
    cells = json.loads(Path(runs["warm"]["good_value"].output_path).read_text())["cells"]
    counts = [c["execution_count"] for c in cells if c.get("execution_count") is not None]
    assert len(counts) == 6 and counts == list(range(counts[0], counts[0] + 6))


def test_a_failing_cell_stops_a_warm_run_as_it_stops_a_cell_by_cell_run(runs: dict) -> None:
    fresh, warm = runs["fresh"]["bad_value"], runs["warm"]["bad_value"]
    assert (fresh.status, warm.status) == ("FAILED", "FAILED")
    assert (warm.error, warm.error_cell) == (fresh.error, fresh.error_cell)
    assert warm.error.startswith("RuntimeError: set-up broke")
    cells = normalized(warm.output_path)
    assert cells == normalized(fresh.output_path)
    statuses = [c["status"] for c in cells if c["status"] is not None]
    assert statuses == ["completed", "completed", "completed", "failed", "pending", "pending"]
    assert not any("never" in json.dumps(c["outputs"]) for c in cells)


def test_a_cell_allowed_to_raise_does_not_stop_a_warm_run(runs: dict) -> None:
    fresh, warm = runs["fresh"]["allowed_value"], runs["warm"]["allowed_value"]
    assert (warm.status, warm.error, warm.error_cell) == (fresh.status, fresh.error, fresh.error_cell)
    cells = normalized(warm.output_path)
    assert cells == normalized(fresh.output_path)
    assert any(o.get("text") == "after the allowed error\n" for c in cells for o in c["outputs"])


def test_the_output_notebook_is_written_once_for_a_quick_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import papermill.engines
    import papermill.execute

    from notebook_orch.engine.executor import execute_run
    from notebook_orch.engine.runner import build_requests

    writes: list[str] = []
    real = papermill.execute.write_ipynb

    def counting(nb, path):  # noqa: ANN001 - papermill's signature
        writes.append(path)
        return real(nb, path)

    monkeypatch.setattr(papermill.execute, "write_ipynb", counting)
    monkeypatch.setattr(papermill.engines, "write_ipynb", counting)
    make_project(tmp_path, {"one": [asset_cell("one_value", 'one_value = {"n": 1}')]})
    with open_project(tmp_path) as project:
        plan = project.plan("one_value", partitions=PartitionSelection(start="2013-01-03", end="2013-01-04"))
        first, second = build_requests(project, plan, kind="manual", mode="warm")
    assert execute_run(first).status == "SUCCESS"  # starts the kernel: a save may go through while it starts
    writes.clear()
    outcome = execute_run(second)
    assert outcome.status == "SUCCESS", outcome.error
    assert writes == [outcome.output_path]
