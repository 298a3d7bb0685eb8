"""Projects for the partition heatmap's browser test and benchmark: declared in notebooks, their statuses written
straight into the store (one run per asset and status), so that no notebook has to execute to get a picture with
every status in it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from browser_helpers import notebook

from notebook_orch.store.records import ConsumedInput, NewMaterialization

HEATMAP_NOTEBOOK = ["%load_ext notebook_orch", "%nbo partitions"]
HALF_YEAR = "daily:2013-01-01..2013-06-30"

# A readable example: ingest -> clean -> revenue by day -> by month -> a summary, plus a static asset.
EXAMPLE = {
    "ingest": [
        f"%%asset orders --partitions {HALF_YEAR}\norders = load('orders', partition_key)",
        f"%%asset customers --partitions {HALF_YEAR}\ncustomers = load('customers', partition_key)",
        "%%asset regions --partitions static:us,eu,asia,latam\nregions = load('regions', partition_key)",
    ],
    "model": [
        f"%%asset orders_clean --deps orders --partitions {HALF_YEAR}\norders_clean = orders.dropna()",
        f"%%asset daily_revenue --deps orders_clean,customers --partitions {HALF_YEAR}\n"
        "daily_revenue = orders_clean.merge(customers).amount.sum()",
        "%%asset monthly_revenue --deps daily_revenue --partitions monthly:2013-01..2013-06\n"
        "monthly_revenue = daily_revenue.sum()",
        "%%asset summary --deps monthly_revenue[all]\nsummary = monthly_revenue.describe()",
    ],
}


def days(first: int, last: int) -> list[str]:
    """Keys of days ``first``..``last`` (1-based, inclusive) of 2013."""
    from datetime import date, timedelta

    return [(date(2013, 1, 1) + timedelta(days=i - 1)).isoformat() for i in range(first, last + 1)]


def materialize(project: Any, asset: str, keys: Sequence[str], *, code_version: str | None = None) -> None:
    """Record ``asset[keys]`` as built by one run (``code_version`` other than the cell's: built by older code)."""
    spec = project.graph.spec(asset)
    inputs = inputs_now(project, asset, keys) if spec.dep_names else {}
    run = project.store.start_run(notebook=spec.notebook, targets=[(asset, k) for k in keys], kind="manual")
    project.store.finalize_success(run.run_id, [NewMaterialization(
        asset=asset, partition=k, code_version=code_version or spec.code_version, data_version="v1",
        deps_signature=spec.deps_signature, inputs=inputs.get(k, ())) for k in keys])


def inputs_now(project: Any, asset: str, keys: Sequence[str]) -> dict[str, tuple[ConsumedInput, ...]]:
    """What each partition reads upstream as the store holds it now (the lineage a real run records)."""
    report = project.status()
    reads = {k: [(a, p) for a, p, _ in report.upstream_partitions(asset, k)] for k in keys}
    snap = project.store.snapshot(keys=sorted({pair for pairs in reads.values() for pair in pairs}))
    found = {}
    for name, st in snap.assets.items():
        for i, part in enumerate(st.partitions):
            if st.materialization_id[i] is not None:
                found[(name, part)] = ConsumedInput(name, part, st.materialization_id[i], st.data_version[i],
                                                    st.data_seq[i])
    return {k: tuple(found[pair] for pair in pairs if pair in found) for k, pairs in reads.items()}


def fail(project: Any, asset: str, keys: Sequence[str]) -> None:
    spec = project.graph.spec(asset)
    run = project.store.start_run(notebook=spec.notebook, targets=[(asset, k) for k in keys], kind="manual")
    project.store.finalize_failure(run.run_id, error="ValueError: no rows")


def write_example(root: Path) -> Path:
    """The example project, with fresh, stale (built by older code, and downstream of that), missing and failed
    partitions in the store."""
    from notebook_orch.project import Project

    (root / "pyproject.toml").write_text('[tool.notebook_orch]\nnotebooks = "notebooks"\n', encoding="utf-8")
    for name, cells in EXAMPLE.items():
        notebook(root / "notebooks" / f"{name}.ipynb", cells)
    notebook(root / "heatmap.ipynb", [*HEATMAP_NOTEBOOK, "%nbo graph"],
             markdown="# Partitions\nEvery asset by partition; hover a cell for its partition, click to select it "
                      "(the graph below opens its panel on it).")
    with Project(root) as project:
        materialize(project, "orders", days(1, 161))
        fail(project, "orders", days(162, 164))
        materialize(project, "customers", days(1, 181))
        materialize(project, "orders_clean", days(1, 151))
        materialize(project, "daily_revenue", days(1, 120))
        materialize(project, "orders_clean", days(69, 79), code_version="older")  # Mar 10..20: code changed
        materialize(project, "monthly_revenue", ["2013-01", "2013-02", "2013-03", "2013-04"])
        materialize(project, "regions", ["us", "eu"])
        fail(project, "regions", ["asia"])
    return root


def write_grid(root: Path, n_assets: int = 50, n_days: int = 365) -> Path:
    """``n_assets`` daily assets over ``n_days`` days with every status in patterns that differ by asset (so the
    ranges do not collapse into one run per row): the benchmark's 50 x 365."""
    from notebook_orch.project import Project

    (root / "pyproject.toml").write_text('[tool.notebook_orch]\nnotebooks = "notebooks"\n', encoding="utf-8")
    spec = f"daily:2013-01-01..{days(n_days, n_days)[0]}"
    per_notebook = 10
    for first in range(0, n_assets, per_notebook):
        cells = [f"%%asset a{i:02d} --partitions {spec}\na{i:02d} = {i}"
                 for i in range(first, min(first + per_notebook, n_assets))]
        notebook(root / "notebooks" / f"nb{first // per_notebook}.ipynb", cells)
    notebook(root / "heatmap.ipynb", HEATMAP_NOTEBOOK)
    with Project(root) as project:
        for i in range(n_assets):
            built = days(1, n_days - 3 * i)  # later assets are built less far
            materialize(project, f"a{i:02d}", built)
            old = [k for j, k in enumerate(built) if (j + i) % 17 == 0]  # scattered stale days
            if old:
                materialize(project, f"a{i:02d}", old, code_version="older")
            if i:  # the first days after what was built failed
                fail(project, f"a{i:02d}", days(n_days - 3 * i + 1, min(n_days, n_days - 3 * i + 2)))
    return root
