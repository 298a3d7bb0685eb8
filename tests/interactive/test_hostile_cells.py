"""Hostile cells in a real ``InteractiveShell``: ``SystemExit`` in an ``%%asset`` cell, names Python normalizes, and
values that carry a secret (read under a computed name) — each refused with a message naming the asset and cell,
with nothing published."""

from __future__ import annotations

import pytest
from interactive_helpers import CELLS, ProjectDir, Session

from notebook_orch.errors import RunFailed, ValueStorageError

SECRET = "tok-3c9e1f7a-hostile"


def save_with(project: ProjectDir, **cells: str) -> dict[str, str]:
    saved = {**CELLS, **cells}
    project.save(saved)
    return saved


def published(project: ProjectDir, asset: str) -> list:
    folder = project.config.data_dir / asset
    return sorted(p for p in folder.rglob("*")) if folder.exists() else []


@pytest.mark.parametrize(("body", "shown"), [
    ("import sys\nsys.exit(3)\nquits = 1", "SystemExit: 3"),
    ("raise SystemExit('giving up')\nquits = 1", "SystemExit: 'giving up'"),
])
def test_system_exit_in_an_asset_cell_is_reported_as_that_naming_the_cell(
        project: ProjectDir, new_session, body: str, shown: str) -> None:
    source = f"%%asset quits\n{body}"
    saved = save_with(project, quits=source)
    session: Session = new_session()
    result = session.run(source)
    assert not result.success
    error = result.error_in_exec
    assert isinstance(error, RunFailed)
    index = list(saved).index("quits")
    assert str(error) == (
        f"Asset quits[unpartitioned] failed in notebooks/pipeline.ipynb, cell {index + 1}: {shown} (the cell called "
        "sys.exit() or raised SystemExit; in a notebook that stops the cell, not the kernel, and fails the run: "
        "raise an exception that says what went wrong instead)")
    assert isinstance(error.__cause__, SystemExit) and error.cell == index
    with project.store() as store:
        (run,) = store.list_runs(asset="quits")
        assert run.status == "FAILED" and shown in run.error
    assert published(project, "quits") == []
    assert session.ok("print(1 + 1)") == "2\n"  # the session goes on


def test_an_asset_name_python_would_normalize_is_explained(session: Session) -> None:
    result = session.run("%%asset ﬁle\nﬁle = 1")
    assert not result.success
    assert "Asset name 'ﬁle' is not in the form Python uses for names: Python reads it as 'file' (Unicode NFKC " \
           "normalization), so the cell's variable would be 'file'. Write 'file' instead." in session.stderr


# -- secrets stored as part of a value ----------------------------------------------------------------------------
READ = "import notebook_orch\ntoken = notebook_orch.secret('NBO_' + 'HOSTILE_' + 'TOKEN')  # a computed name\n"


@pytest.mark.parametrize(("name", "body"), [
    ("in_dict", "in_dict = {'header': f'Bearer {token}', 'n': 1}"),
    ("in_list", "in_list = [['a', token.reveal()]]"),
    ("in_frame", "in_frame = pd.DataFrame({'auth': ['x', 'y ' + token.reveal()], 'n': [1, 2]})"),
    ("in_column", "in_column = pd.DataFrame({token.reveal(): [1]})"),
    ("in_pickle", "class Box:\n    pass\nin_pickle = Box()\nin_pickle.key = token.reveal()"),
])
def test_a_value_holding_a_secret_is_refused_and_nothing_is_published(
        project: ProjectDir, new_session, monkeypatch: pytest.MonkeyPatch, name: str, body: str) -> None:
    monkeypatch.setenv("NBO_HOSTILE_TOKEN", SECRET)
    io = " --io pickle" if name == "in_pickle" else ""
    source = f"%%asset {name}{io}\n{READ}{body}"
    save_with(project, **{name: source})
    session: Session = new_session()
    result = session.run(source)
    assert not result.success
    error = result.error_in_exec
    assert isinstance(error, ValueStorageError)
    assert str(error) == (
        f"Asset {name!r}, partition 'unpartitioned': the value contains the secret NBO_HOSTILE_TOKEN (read with "
        "notebook_orch.secret('NBO_HOSTILE_TOKEN')); secrets are never stored. Keep only what is derived from it (a "
        "length, a hash, the data it fetched), not the secret itself. Nothing was published.")
    assert published(project, name) == []
    with project.store() as store:
        (run,) = store.list_runs(asset=name)
        assert run.status == "FAILED" and "NBO_HOSTILE_TOKEN" in run.error and SECRET not in run.error
        assert store.latest_materialization(name, "unpartitioned") is None
    leaks = [p for p in project.root.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert leaks == []


def test_a_value_derived_from_a_secret_is_stored(project: ProjectDir, new_session,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBO_HOSTILE_TOKEN", SECRET)
    source = f"%%asset derived\n{READ}derived = {{'length': len(token), 'prefix_ok': token.startswith('tok-')}}"
    save_with(project, derived=source)
    session: Session = new_session()
    assert session.ok(source).startswith("derived[unpartitioned]: 2 rows in ")
    assert session.ok("print(sorted(derived.items()))").strip() == "[('length', 20), ('prefix_ok', True)]"


def test_the_kernel_session_scrub_redacts_every_message_it_serializes(monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_client.session import Session as KernelSession

    import notebook_orch
    from notebook_orch.secrets import install_session_scrub

    session = KernelSession(key=b"k")
    install_session_scrub(session)
    install_session_scrub(session)  # once only: not wrapped twice
    monkeypatch.setenv("NBO_HOSTILE_TOKEN", SECRET)
    notebook_orch.secret("NBO_HOSTILE_TOKEN")
    content = {"name": "stdout", "text": f"a {SECRET} b", "data": {"text/plain": [f"'{SECRET}'", ("x", SECRET)]},
               "n": 3}
    msg = session.msg("stream", content=content)
    frames = session.serialize(msg)
    got = session.deserialize(session.feed_identities(frames)[1])["content"]
    assert got == {"name": "stdout", "text": "a <secret NBO_HOSTILE_TOKEN> b",
                   "data": {"text/plain": ["'<secret NBO_HOSTILE_TOKEN>'", ["x", "<secret NBO_HOSTILE_TOKEN>"]]},
                   "n": 3}
    assert content["text"] == f"a {SECRET} b"  # the caller's dict is not modified
