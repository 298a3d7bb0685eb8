"""Discovery: reading a project of 500 notebooks (1,000 assets) from disk, no kernel.

Each generated notebook has an import cell, a helper cell, a markdown cell, two asset cells with dependencies and
a plotting cell; every notebook's sources differ, so no cache makes the figure look better than a cold start.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import nbformat
from _common import median_seconds, report

from notebook_orch.core import codeversion
from notebook_orch.discovery import discover

NOTEBOOKS = 500


def write_project(folder: Path, n: int = NOTEBOOKS) -> None:
    v4 = nbformat.v4
    for i in range(n):
        upstream = f"clean_{i - 1}" if i else None
        deps = f" --deps {upstream}" if upstream else ""
        cells = [
            v4.new_code_cell("%load_ext notebook_orch\nimport pandas as pd"),
            v4.new_code_cell(
                f"THRESHOLD_{i} = {i}\n\n"
                f"def tidy_{i}(df):\n    '''Drop rows under the threshold.'''\n    return df[df.amount > THRESHOLD_{i}]"
            ),
            v4.new_markdown_cell(f"# Notebook {i}\nRaw and clean sales, region {i % 7}."),
            v4.new_code_cell(
                f"%%asset raw_{i} --partitions daily:2013-01-01..2013-12-31{deps}\n"
                f"raw_{i} = pd.DataFrame({{'amount': range({i + 10})}})"
            ),
            v4.new_code_cell(
                f"%%asset clean_{i} --deps raw_{i} --partitions daily:2013-01-01..2013-12-31 "
                f"--check 'len(clean_{i}) > 0'\nclean_{i} = tidy_{i}(raw_{i})"
            ),
            v4.new_code_cell(f"clean_{i}.amount.plot(title='notebook {i}')"),
        ]
        sub = folder / f"team_{i % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        nbformat.write(v4.new_notebook(cells=cells), sub / f"sales_{i:03d}.ipynb")


def run() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="nbo-bench-discovery-"))
    try:
        write_project(tmp / "notebooks")
        found = discover(tmp / "notebooks", root=tmp)
        assert len(found.specs) == 2 * NOTEBOOKS and not found.problems, found.problems[:3]

        def cold() -> None:
            codeversion._analyse.cache_clear()  # measure parsing every cell, as a fresh process does
            discover(tmp / "notebooks", root=tmp)

        report("discovery_500_notebooks", median_seconds(cold, repeat=5), "s", "< 2 s")
        warm = median_seconds(lambda: discover(tmp / "notebooks", root=tmp), repeat=5)
        report("rediscovery_500_notebooks_unchanged", warm, "s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run()
