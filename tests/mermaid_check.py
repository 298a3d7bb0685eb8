"""Mermaid's own parser for the tests: the npm packages of ``tests/fixtures/mermaid`` installed into a cache folder.

The packages go to ``$NBO_TEST_CACHE`` (default ``~/.cache/notebook_orch-tests``) under a name derived from the
lock file, never into the repository. ``python tests/mermaid_check.py`` installs them ahead of time (scripts/test.sh
does); otherwise the first test that needs them installs them, under a file lock so parallel workers wait.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

FIXTURE = Path(__file__).parent / "fixtures" / "mermaid"


class Unavailable(RuntimeError):
    """node/npm is missing or the packages could not be installed: the reason says which."""


def cache_dir() -> Path:
    base = Path(os.environ.get("NBO_TEST_CACHE") or Path.home() / ".cache" / "notebook_orch-tests")
    digest = hashlib.sha256((FIXTURE / "package-lock.json").read_bytes()).hexdigest()[:12]
    return base / f"mermaid-{digest}"


def install() -> Path:
    """The folder holding node_modules with mermaid and jsdom; installs them once (``npm ci``)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise Unavailable("node and npm are needed to run Mermaid's parser (apt-get install nodejs npm); "
                          f"found node={node}, npm={npm}")
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        script = (FIXTURE / "parse.mjs").read_bytes()
        if not (folder / "parse.mjs").is_file() or (folder / "parse.mjs").read_bytes() != script:
            (folder / "parse.mjs").write_bytes(script)  # the script may be newer than the install
        if (folder / "node_modules" / "mermaid" / "package.json").is_file():
            return folder
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(FIXTURE / name, folder / name)
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder,
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise Unavailable(f"`npm ci` of mermaid into {folder} failed ({done.returncode}): "
                              f"{(done.stderr or done.stdout).strip()[-800:]}")
    return folder


def parse(sources: list[str], **config: object) -> list[dict]:
    """One result per source: ``{"ok": True, "type": "flowchart-v2"}`` or ``{"ok": False, "error": ...}``.

    ``config`` goes to ``mermaid.initialize`` (defaults are Mermaid's own, as in JupyterLab), e.g. ``maxEdges``.
    """
    folder = install()
    request = json.dumps({"sources": sources, "config": config})
    done = subprocess.run(["node", str(folder / "parse.mjs")], input=request, capture_output=True,
                          text=True, timeout=300, cwd=folder)
    if done.returncode != 0:
        raise RuntimeError(f"Mermaid's parser crashed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout)


if __name__ == "__main__":
    try:
        print(f"Mermaid parser installed in {install()}")
    except Unavailable as exc:
        print(f"WARNING: {exc}. The Mermaid parser test will be SKIPPED.", file=sys.stderr)
