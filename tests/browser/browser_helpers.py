"""JupyterLab on 127.0.0.1 and Debian's Chromium driven by Playwright (never ``playwright install``).

The recipe and its traps are in the team notes (browser-testing): a private Jupyter config/data/runtime folder, no
token, news and extension manager off; Chromium with the flags that stop it reaching for the internet.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

import nbformat

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(os.environ.get("NBO_TEST_ARTIFACTS", Path(__file__).parent / "artifacts"))
DAYS = "daily:2013-01-01..2013-01-03"
KEYS = ["2013-01-01", "2013-01-02", "2013-01-03"]
SETUP = ["%load_ext notebook_orch", "import pandas as pd"]  # a run executes set-up cells, then its asset cells

ASSETS = {
    "sources": [
        *SETUP,
        f"%%asset raw --partitions {DAYS} --description 'Readings of one day'\n"
        "raw = pd.DataFrame({'day': [partition_key] * 3, 'x': [1.0, 2.0, None]})",
        f"%%asset clean --deps raw --partitions {DAYS} --check 'len(clean) > 0'\nclean = raw.dropna()",
    ],
    "model": [
        *SETUP,
        f"%%asset rolling --deps clean[-1:0] --partitions {DAYS}\nrolling = clean.groupby('day').x.sum().reset_index()",
        "%%asset summary --deps clean[all]\nsummary = clean.groupby('day').x.sum().reset_index()",
    ],
}
GRAPH_NOTEBOOK = ["%load_ext notebook_orch", "%nbo graph"]


def notebook(path: Path, cells: list[str], *, markdown: str | None = None) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = ([nbformat.v4.new_markdown_cell(markdown)] if markdown else []) + [
        nbformat.v4.new_code_cell(c) for c in cells]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


def make_project(root: Path) -> Path:
    (root / "pyproject.toml").write_text('[tool.notebook_orch]\nnotebooks = "notebooks"\n', encoding="utf-8")
    for name, cells in ASSETS.items():
        notebook(root / "notebooks" / f"{name}.ipynb", cells)
    notebook(root / "lineage.ipynb", GRAPH_NOTEBOOK, markdown="# Lineage\nClick an asset to see why it has its colour.")
    return root


def nbo(root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 240) -> str:
    done = subprocess.run([sys.executable, "-m", "notebook_orch.faces.cli", "-C", str(root), *args],
                          capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A JupyterLab server serving ``root``, in its own session; ``stop()`` sends SIGTERM to that pid only."""

    def __init__(self, root: Path, home: Path, *, app: str = "lab") -> None:
        self.root, self.port = root, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                         ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython")):
            env[var] = str(home / sub)
            (home / sub).mkdir(parents=True, exist_ok=True)
        labconfig = home / "config" / "labconfig"
        labconfig.mkdir(exist_ok=True)
        (labconfig / "page_config.json").write_text(json.dumps({"disabledExtensions": {
            "@jupyterlab/apputils-extension:announcements": True,
            "@jupyterlab/extensionmanager-extension": True}}))
        for var in ("NBO_PROJECT", "NBO_NOTEBOOKS", "NBO_STORE_URL", "NBO_DATA_DIR"):
            env.pop(var, None)
        self.env = env
        cmd = [sys.executable, "-m", "jupyter", app, "--no-browser", "--IdentityProvider.token=",
               "--ServerApp.password=", "--ip=127.0.0.1", f"--port={self.port}", "--ServerApp.port_retries=0",
               f"--ServerApp.root_dir={root}"]
        if app == "lab":
            cmd += ["--LabApp.news_url=None", "--LabApp.expose_app_in_browser=True",
                    "--LabApp.extension_manager=readonly"]
        else:  # Notebook 7 (`jupyter notebook`): the same front end, its own app class
            cmd += ["--JupyterNotebookApp.expose_app_in_browser=True"]
        if os.geteuid() == 0:
            cmd.append("--ServerApp.allow_root=True")
        self.log = open(home / "lab.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/api/status", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("JupyterLab did not start: " + (home / "lab.log").read_text()[-3000:])
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


def open_browser(profile: Path) -> tuple[Any, Any]:
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    ctx = pw.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
        viewport={"width": 1500, "height": 950})
    return pw, ctx


# -- page-side helpers (cytoscape draws on a canvas: nodes are read and clicked through its instance) ----------
CY = "document.querySelector('.nbo-lineage-canvas')._cyreg.cy"


def open_notebook(page: Any, lab: Lab, name: str, *, notebook7: bool = False) -> None:
    page.goto(f"{lab.url}/notebooks/{name}" if notebook7 else f"{lab.url}/lab/tree/{name}?reset")
    page.wait_for_function(
        "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        " const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;"
        " return k && k.status === 'idle'; }", timeout=60_000)


def run_all(page: Any) -> None:
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")


def wait_for_graph(page: Any, nodes: int, timeout: float = 60_000) -> None:
    # Ready means drawn with real, distinct positions on a sized canvas, not merely mounted.
    page.wait_for_function(
        f"""() => {{ const box = document.querySelector('.nbo-lineage-canvas');
            if (!box || box.clientWidth === 0 || !box._cyreg) return false;
            // the anywidget canvas says when it has drawn; ipycytoscape's adds its nodes one widget at a time
            if (!box.classList.contains('nbo-ipycytoscape') && box.dataset.ready !== '1') return false;
            const cy = box._cyreg.cy; const ns = cy.nodes(':childless');
            if (ns.length !== {nodes}) return false;
            const seen = new Set(ns.map(n => Math.round(n.renderedPosition().x) + ',' +
                                          Math.round(n.renderedPosition().y)));
            return seen.size === {nodes}; }}""", timeout=timeout)


def adapter(page: Any) -> str:
    """Which canvas the page shows: ``ipycytoscape`` (small graphs) or ``anywidget``."""
    return page.evaluate("() => document.querySelector('.nbo-lineage-canvas').classList.contains('nbo-ipycytoscape')"
                         " ? 'ipycytoscape' : 'anywidget'")


def node_states(page: Any) -> dict[str, dict[str, str]]:
    return page.evaluate(
        f"() => Object.fromEntries({CY}.nodes(':childless').map(n => [n.id(), "
        "{status: n.data('status'), colour: n.style('background-color'), classes: n.classes().join(' ')}]))")


def click_node(page: Any, name: str) -> None:
    """Click ``name`` where a person would; on a big graph drawn too small to hit a node, zoom in on it first (as
    a person zooms before clicking). Playwright positions the click relative to the canvas at click time, so a
    notebook that scrolls meanwhile does not move the target."""
    xy = page.evaluate(
        f"""() => new Promise((done) => {{ const cy = {CY}; const n = cy.getElementById({json.dumps(name)});
            const w = cy.width(), h = cy.height(), p = n.renderedPosition();
            if (cy.zoom() < 0.5) {{ cy.zoom(0.8); cy.center(n); }}
            else if (p.x < 10 || p.y < 10 || p.x > w - 10 || p.y > h - 10) cy.center(n);
            requestAnimationFrame(() => requestAnimationFrame(() => {{
                const q = n.renderedPosition(); done([q.x, q.y]); }})); }})""")
    page.locator(".nbo-lineage-canvas").click(position={"x": xy[0], "y": xy[1]})


def kernel_eval(page: Any, code: str) -> str | None:
    """Run ``code`` in the open notebook's kernel (not as a cell) and return its text/plain result."""
    return page.evaluate("""async (code) => {
        const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
        let out = null;
        const f = k.requestExecute({code, silent: false, store_history: false});
        f.onIOPub = (m) => { if (m.header.msg_type === 'execute_result') out = m.content.data['text/plain']; };
        await f.done; return out; }""", code)


def rgb(hex_colour: str) -> str:
    h = hex_colour.lstrip("#")
    return f"rgb({int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)})"


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def dedent(text: str) -> str:
    return textwrap.dedent(text).strip()
