"""One planned run: lock, heartbeat, papermill, finalize — and retries with backoff.

Lifecycle of an attempt:
1. ``start_run`` records the run RUNNING and locks every (asset, partition) it targets (a second request is told
   which run holds them);
2. a heartbeat thread refreshes the run while papermill executes the notebook, with the partition and the run
   context injected as parameters (never secrets);
3. success: the materializations the kernel published (read from the run's manifest) and the run's SUCCESS are
   committed in one transaction; failure: the run is FAILED with the exception, the failing cell's index and
   source, and the output notebook's path; values the kernel already published for the run's other assets are
   withdrawn (a failed run publishes nothing). A run whose worker dies is failed by the runner at once; one whose
   runner dies too stops heartbeating and is reaped by the next command.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from notebook_orch.core.status import Outcome
from notebook_orch.errors import PartitionLocked, cell_number

FRESH_MODE, WARM_MODE = "fresh", "warm"
# The kernel's own log (e.g. ipykernel's warning about TCP transport on every start) is noise in `nbo` output;
# cell output and errors are unaffected.
KERNEL_ARGUMENTS = ("--IPKernelApp.log_level=ERROR", "--HistoryManager.enabled=False")
_STORES: dict[str, Any] = {}


@dataclass(frozen=True)
class RunRequest:
    """Everything a worker process needs for one planned run (picklable)."""

    project_root: str
    store_url: str
    notebook: str  # relative to the project root
    partition: str
    assets: tuple[str, ...]
    code_versions: dict[str, str]
    kind: str = "manual"
    mode: str = WARM_MODE
    retries: int = 0
    backoff_s: float = 1.0
    heartbeat_s: float = 10.0
    execution_timeout_s: float | None = None
    partition_date: str | None = None
    # Ids for attempts 1, 2, ... chosen by the runner, so it can tell a run that started from one that did not
    # if the worker dies; a fresh id is drawn for any attempt beyond them.
    run_ids: tuple[str, ...] = ()
    data_dir: str | None = None  # the project's value folder (default: <project>/.notebook_orch/data)
    # Per asset: cell, code version, and the upstream keys it reads (runner.asset_contexts); the worker resolves
    # where those values are and hands it all to the kernel in the run folder's context.json.
    asset_contexts: dict[str, dict] = field(default_factory=dict)
    # Notebook parameters of the run (a schedule's --param, Project.submit(parameters=...)): papermill injects
    # them with the partition, so the notebook's parameters cell is overridden as with plain papermill.
    parameters: dict[str, Any] = field(default_factory=dict)
    # The number recorded for the first attempt: a retry of a run that died (the scheduler's) continues its count,
    # so ``retries`` are the attempts left, not the asset's whole policy.
    first_attempt: int = 1
    # Concurrency pools (pool -> limit, core/pools.run_pools) the run takes a slot in before it executes.
    pools: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RunOutcome:
    notebook: str
    partition: str
    assets: tuple[str, ...]
    status: str  # SUCCESS, FAILED, CANCELED (interrupted), LOCKED, SKIPPED
    run_id: str | None = None
    attempts: int = 0
    error: str | None = None
    error_cell: int | None = None
    output_path: str | None = None
    duration_s: float = 0.0
    run_ids: tuple[str, ...] = field(default_factory=tuple)


def store_for(url: str) -> Any:
    from notebook_orch.store import open_store

    store = _STORES.get(url)
    if store is None:
        store = _STORES[url] = open_store(url)
    return store


def die_with_parent() -> None:
    """Worker initializer: on Linux, get SIGKILLed when the runner dies, so no run outlives its runner."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: runs are still reaped by heartbeat timeout
        pass


def execute_run(req: RunRequest) -> RunOutcome:
    """Run one planned run, retrying a failed attempt up to ``req.retries`` times with exponential backoff."""
    started = time.perf_counter()
    run_ids: list[str] = []
    outcome: RunOutcome | None = None
    for attempt in range(1, req.retries + 2):
        outcome = _attempt(req, attempt)
        if outcome.run_id:
            run_ids.append(outcome.run_id)
        if outcome.status != Outcome.FAILED or attempt > req.retries:
            break
        time.sleep(min(req.backoff_s * 2 ** (attempt - 1), 60.0))
    assert outcome is not None
    return RunOutcome(**{**outcome.__dict__, "attempts": len(run_ids) or 1, "run_ids": tuple(run_ids),
                         "duration_s": time.perf_counter() - started})


def _attempt(req: RunRequest, attempt: int) -> RunOutcome:
    from notebook_orch.engine.lifecycle import RunLifecycle, manifest_path, output_notebook_path

    store = store_for(req.store_url)
    targets = [(a, req.partition) for a in req.assets]
    try:
        run_id = req.run_ids[attempt - 1] if attempt <= len(req.run_ids) else None
        life = RunLifecycle.start(store, data_dir_of(req), notebook=req.notebook, targets=targets, kind=req.kind,
                                  attempt=req.first_attempt + attempt - 1, run_id=run_id, pools=req.pools)
    except PartitionLocked as exc:
        return RunOutcome(req.notebook, req.partition, req.assets, Outcome.LOCKED, error=str(exc))
    source = Path(req.project_root) / req.notebook
    output = output_notebook_path(req.project_root, life.run_id, req.notebook)
    manifest = manifest_path(req.project_root, life.run_id)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    error: tuple[str, int | None, str | None] | None = None
    secrets: dict[str, str] = {}
    with life.heartbeats(req.heartbeat_s):
        try:
            life.wait_for_slots(req.pools)  # at once unless the run started WAITING for a pool slot
            if not source.is_file():
                raise FileNotFoundError(
                    f"Notebook {req.notebook} no longer exists (deleted after the plan was made); restore it or "
                    "validate the project again (nbo validate)."
                )
            context_file = _write_context(store, req, life.run_id, manifest.parent)
            _papermill(req, life.run_id, source, output, manifest, context_file)
        except Exception as exc:  # the one boundary around a notebook run
            error = _describe_failure(exc, req, source, output)
    return _finish(life, req, attempt, error, output=output, manifest=manifest, secrets=secrets)


def _write_context(store: Any, req: RunRequest, run_id: str, folder: Path) -> Path:
    from notebook_orch.engine.inputs import write_run_context

    path = folder / "context.json"
    write_run_context(path, store=store, run_id=run_id, partition=req.partition, notebook=req.notebook,
                      data_dir=str(data_dir_of(req)), assets=req.asset_contexts)
    return path


def data_dir_of(req: RunRequest) -> Path:
    return Path(req.data_dir) if req.data_dir else Path(req.project_root, ".notebook_orch", "data")


def _finish(life: Any, req: RunRequest, attempt: int, error: tuple[str, int | None, str | None] | None,
            *, output: Path, manifest: Path, secrets: dict[str, str]) -> RunOutcome:
    """Commit what the kernel published with SUCCESS in one transaction, or withdraw it and record the failure."""
    from notebook_orch.engine.manifest import read_manifest
    from notebook_orch.errors import StoreError

    run_id = life.run_id
    try:
        mats, checks = read_manifest(manifest)
    except (OSError, ValueError, TypeError) as exc:  # a kernel killed while appending, say
        mats, checks = [], []
        error = error or (f"The run's manifest {manifest} could not be read ({type(exc).__name__}: {exc}).",
                          None, None)
    out_path = str(output) if output.exists() else None
    secrets = {**secrets, **_secret_values(manifest)}
    if secrets:
        if out_path:
            _scrub_notebook(output, secrets)
        if error is not None:
            error = (_scrub(error[0], secrets), error[1], error[2] and _scrub(error[2], secrets))
        checks = [replace(c, detail=_scrub(c.detail, secrets)) if c.detail else c for c in checks]
    if error is None:
        missing = sorted(set(req.assets) - {m.asset for m in mats})
        if missing:
            error = (f"The notebook ran but asset cell(s) {missing} did not materialize; is each %%asset cell "
                     "in the notebook and does it run the notebook_orch extension (%load_ext notebook_orch)?",
                     None, None)
    if error is None:
        try:
            life.succeed(mats, output_path=out_path)
            return RunOutcome(req.notebook, req.partition, req.assets, Outcome.SUCCESS, run_id, attempt,
                              output_path=out_path)
        except StoreError as exc:  # e.g. reaped meanwhile: nothing was committed, and the values are withdrawn
            return RunOutcome(req.notebook, req.partition, req.assets, Outcome.FAILED, run_id, attempt, error=str(exc),
                              output_path=out_path)
    message, cell, cell_source = error
    record = life.fail(message, cell=cell, source=cell_source, checks=checks, output_path=out_path)
    if record.error != message:  # reaped meanwhile: the run is already FAILED; keep the real reason in the outcome
        message = f"{message} (not recorded: the run had already ended as {record.status})"
    return RunOutcome(req.notebook, req.partition, req.assets, Outcome.FAILED, run_id, attempt, error=message,
                      error_cell=cell, output_path=out_path)


_MIN_SECRET_LENGTH = 4  # shorter values would garble every message and protect nothing


def _secret_values(manifest: Path) -> dict[str, str]:
    """Value -> name of each secret the run's kernel read (``notebook_orch.secret``), whatever computed the name.

    The kernel itself scrubs every output before it leaves (``secrets.install_session_scrub``) and reports the
    NAMES it read in the run's manifest (never values); what this run keeps — the run's error, check details, the
    output notebook — is scrubbed again here with those variables' values, read from this process's environment
    (the kernel's is a copy of it). A secret read with a default instead of the environment is scrubbed by the
    kernel only.
    """
    from notebook_orch.engine.manifest import secret_names

    try:
        names = secret_names(manifest)
    except (OSError, ValueError):
        return {}
    values = {os.environ.get(name, ""): name for name in names}
    return {v: n for v, n in values.items() if len(v) >= _MIN_SECRET_LENGTH}


def _scrub(text: str, secrets: dict[str, str]) -> str:
    for value in sorted(secrets, key=len, reverse=True):
        text = text.replace(value, f"<secret {secrets[value]}>")
    return text


def _scrub_notebook(path: Path, secrets: dict[str, str]) -> None:
    """Rewrite the output notebook (atomically) if any string in it holds a secret value."""
    raw = path.read_text(encoding="utf-8")
    nb = json.loads(raw)
    found = False

    def walk(node: Any) -> Any:
        nonlocal found
        if isinstance(node, str):
            clean = _scrub(node, secrets)
            found |= clean != node
            return clean
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        return node

    nb = walk(nb)
    if found:
        tmp = path.with_name(path.name + ".scrubbed")
        tmp.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)


def _text(cell: dict) -> str:
    text = cell.get("source", "")
    return "".join(text) if isinstance(text, list) else text


def _papermill(req: RunRequest, run_id: str, source: Path, output: Path, manifest: Path, context_file: Path) -> None:
    """Execute the notebook for the run with notebook_orch's papermill engine, in a warm or a fresh kernel.

    The engine executes only the cells the run needs (``core.cell_selection``); the run context it selects them by
    is the one injected into the kernel as ``nbo_run``.
    """
    import logging

    import papermill as pm

    # Our parameters are injected whether or not the notebook's parameters cell names them: not worth a warning.
    logging.getLogger("papermill").setLevel(logging.ERROR)

    from notebook_orch.engine.papermill_engine import ENGINE_NAME, register

    register()
    parameters: dict[str, Any] = {**req.parameters, "partition_key": req.partition}
    if req.partition_date:
        parameters["partition_date"] = req.partition_date
    context = {
        "run_id": run_id,
        "project_root": req.project_root,
        "notebook": req.notebook,
        "partition_key": req.partition,
        "assets": list(req.assets),
        "code_versions": req.code_versions,
        "parameters": dict(req.parameters),
        "manifest": str(manifest),
        "context": str(context_file),
    }
    parameters["nbo_run"] = context
    pm.execute_notebook(
        str(source),
        str(output),
        parameters=parameters,
        engine_name=ENGINE_NAME,
        kernel_name="python3",
        language="python",  # runs always use the python3 kernel; notebooks written by tools may lack metadata
        progress_bar=False,
        cwd=str(source.parent),
        execution_timeout=req.execution_timeout_s,
        shutdown_kernel="immediate",
        extra_arguments=list(KERNEL_ARGUMENTS),
        nbo_run=context,
        nbo_kernel=WARM_MODE if req.mode == WARM_MODE else FRESH_MODE,
    )


def _describe_failure(exc: Exception, req: RunRequest, source: Path, output: Path
                      ) -> tuple[str, int | None, str | None]:
    """(message, cell index in the SOURCE notebook, cell source) for a failed notebook run."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        cell = _source_index(output, exc.cell_index, source)
        message = f"{exc.ename}: {exc.evalue}"
        if exc.ename == "SystemExit":
            from notebook_orch.errors import SYSTEM_EXIT_HINT

            message += SYSTEM_EXIT_HINT
        if not exc.evalue:
            # IPython reports a UsageError (an unknown magic, bad magic arguments) on stderr, not as an error
            # output, so papermill knows only that the cell failed: what the cell printed there is the message.
            message = _stderr_of(output, exc.cell_index) or message
            if "%%asset` not found" in message:
                message += (" The notebook does not load the extension: add a cell with '%load_ext notebook_orch' "
                            "before its first %%asset cell.")
        return message, cell, exc.source
    name = type(exc).__name__
    cell, cell_source = _last_started_cell(output, source)
    where = f"cell {cell_number(cell)} of {req.notebook}" if cell is not None else req.notebook
    if name == "DeadKernelError":
        message = (f"The kernel died while running {where} ({exc}): the process exited or was killed (exit() or "
                   "quit() in this or an earlier cell, os._exit, a crash, out of memory); see the output notebook for "
                   "what it printed last.")
    elif name == "CellTimeoutError":
        limit = f" of {req.execution_timeout_s:g} s" if req.execution_timeout_s else ""
        message = (f"{where[0].upper()}{where[1:]} ran past the execution timeout{limit} and was stopped; make it "
                   "faster or raise the timeout (--timeout).")
    else:
        message = f"{name}: {exc}"
    return message, cell, cell_source


def _read_cells(path: Path) -> list[dict] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError):
        return None


def _source_index(output: Path, exec_index: int, source: Path) -> int | None:
    """Map a cell index of the executed notebook back to the source notebook.

    ``exec_index`` counts the cells papermill executed, injected parameters included; the output file also holds
    the error banner and anchor papermill inserted after the failure (tagged ``papermill-error-cell-tag``).
    """
    out_cells = _read_cells(output)
    if out_cells is None:
        return exec_index
    executed = [c for c in out_cells if not _has_tag(c, "papermill-error-cell-tag")]
    if not 0 <= exec_index < len(executed):
        return None
    return _to_source(executed, exec_index, source)


def _to_source(executed: list[dict], index: int, source: Path) -> int:
    """The source notebook's index of ``executed[index]``: by cell id, else by not counting injected cells."""
    src_cells = _read_cells(source) or []
    ids = [c.get("id") for c in src_cells]
    wanted = executed[index].get("id")
    if wanted is not None and wanted in ids:
        return ids.index(wanted)
    return index - sum(1 for c in executed[:index] if _has_tag(c, "injected-parameters"))


def _stderr_of(output: Path, exec_index: int) -> str:
    cells = _read_cells(output) or []
    executed = [c for c in cells if not _has_tag(c, "papermill-error-cell-tag")]
    if not 0 <= exec_index < len(executed):
        return ""
    text = "".join(_text({"source": o.get("text", "")}) for o in executed[exec_index].get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == "stderr")
    return re.sub(r"\x1b\[[0-9;]*m", "", text).strip()[-2000:]


def _has_tag(cell: dict, tag: str) -> bool:
    return tag in cell.get("metadata", {}).get("tags", [])


def _last_started_cell(output: Path, source: Path) -> tuple[int | None, str | None]:
    """The cell that was running when the kernel died or the timeout struck: the last one papermill started.

    Papermill marks such a cell "completed" without an exception (only a cell that raised is "failed"); the cells
    after it were never started, so the last cell with a start time is the one that was running.
    """
    cells = _read_cells(output)
    if cells is None:
        return None, None
    executed = [c for c in cells if not _has_tag(c, "papermill-error-cell-tag")]
    started = [i for i, c in enumerate(executed)
               if c.get("cell_type") == "code" and c.get("metadata", {}).get("papermill", {}).get("start_time")]
    if not started or _has_tag(executed[started[-1]], "injected-parameters"):
        return None, None
    i = started[-1]
    return _to_source(executed, i, source), _text(executed[i])
