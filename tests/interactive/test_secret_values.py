"""``notebook_orch.secret``: read at run time, never shown, never pickled; ``redact`` for recorded messages."""

from __future__ import annotations

import copy
import pickle

import pytest
from interactive_helpers import Session

import notebook_orch
from notebook_orch.errors import NotebookOrchError
from notebook_orch.secrets import Secret, redact

VALUE = "s3cr3t-value-91b2"


def test_secret_reads_the_environment_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBO_T_SECRET", "first-value")
    assert notebook_orch.secret("NBO_T_SECRET") == "first-value"
    monkeypatch.setenv("NBO_T_SECRET", "second-value")  # rotated: the next read sees it
    token = notebook_orch.secret("NBO_T_SECRET")
    assert token == "second-value" and isinstance(token, str) and token.reveal() == "second-value"
    assert type(token.reveal()) is str
    assert f"Bearer {token}" == "Bearer second-value"  # usable wherever a str is


def test_missing_secret_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NBO_T_MISSING", raising=False)
    with pytest.raises(NotebookOrchError, match=r"Secret 'NBO_T_MISSING' is not set: export NBO_T_MISSING=\.\.\."):
        notebook_orch.secret("NBO_T_MISSING")
    assert notebook_orch.secret("NBO_T_MISSING", default="fallback") == "fallback"


def test_repr_and_display_hide_the_value(monkeypatch: pytest.MonkeyPatch, session: Session) -> None:
    monkeypatch.setenv("NBO_T_SECRET", VALUE)
    token = notebook_orch.secret("NBO_T_SECRET")
    assert repr(token) == "Secret('NBO_T_SECRET')"
    assert VALUE not in repr([token, {"k": token}])
    session.ns["token"] = token
    shown = session.ok("token")
    assert "Secret('NBO_T_SECRET')" in shown and VALUE not in shown
    assert VALUE not in session.ok("[token]")


def test_secret_is_never_pickled_but_copies_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBO_T_SECRET", VALUE)
    token = notebook_orch.secret("NBO_T_SECRET")
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError, match=r"Secret\('NBO_T_SECRET'\) cannot be pickled.*\.reveal\(\)"):
            pickle.dumps({"token": token}, protocol=protocol)
    assert copy.copy(token) is token and copy.deepcopy({"t": token})["t"] is token
    assert pickle.loads(pickle.dumps(token.reveal())) == VALUE


def test_redact_replaces_every_secret_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBO_T_A", "alpha-secret-value")
    monkeypatch.setenv("NBO_T_B", "alpha-secret-value-longer")
    monkeypatch.setenv("NBO_T_TINY", "ab")
    notebook_orch.secret("NBO_T_A")
    notebook_orch.secret("NBO_T_B")
    notebook_orch.secret("NBO_T_TINY")
    text = "used alpha-secret-value-longer and alpha-secret-value; ab stays"
    assert redact(text) == "used <secret NBO_T_B> and <secret NBO_T_A>; ab stays"
    assert redact("nothing here") == "nothing here"
    assert isinstance(Secret("x", "N"), str)
