"""Project configuration: ``[tool.notebook_orch]`` in the project's ``pyproject.toml``, then environment overrides.

Defaults need no config at all: notebooks in ``notebooks/``, store ``sqlite:///.notebook_orch/store.db``, values
under ``.notebook_orch/data/``. Environment: ``NBO_NOTEBOOKS``, ``NBO_STORE_URL``, ``NBO_DATA_DIR``,
``NBO_HEARTBEAT_TIMEOUT``.

Every value is checked where it is read: a wrong type (a table where a path belongs, a string where a number
belongs), a number out of range (NaN, zero or negative, more than a week) or a file that is not UTF-8 is refused with
a ``ConfigError`` naming the key (or variable) and what is expected, before anything is opened or written.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notebook_orch.core.pools import MAX_LIMIT, ConcurrencySpec
from notebook_orch.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_STORE = ".notebook_orch/store.db"
_KEYS = {"notebooks", "store", "data", "heartbeat_timeout", "executor", "dask_address", "alert_command",
         "concurrency"}
_ENV = {"notebooks": "NBO_NOTEBOOKS", "store": "NBO_STORE_URL", "data": "NBO_DATA_DIR",
        "heartbeat_timeout": "NBO_HEARTBEAT_TIMEOUT"}
# A run is presumed dead (and reaped by the next writer) when its heartbeat is older than this. Zero or less would
# reap every live run at once; past a week a dead run would hold its partitions' locks for that long, and far past
# it the cut-off date overflows. (Tests use fractions of a second, so there is no larger minimum.)
MAX_HEARTBEAT_TIMEOUT_S = 7 * 24 * 3600.0
DEFAULT_HEARTBEAT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ProjectConfig:
    root: Path
    notebooks: Path
    store_url: str
    data_dir: Path
    heartbeat_timeout_s: float = DEFAULT_HEARTBEAT_TIMEOUT_S
    executor: str = "local"  # where runs execute when a command names none (``--executor``)
    dask_address: str | None = None  # the Dask scheduler for ``executor = "dask"`` (``--address``)
    # The alert hook (docs/scheduling.md): a command (argv) that gets each SLA miss / final failure as JSON on stdin.
    alert_command: tuple[str, ...] | None = None
    # Limits on runs executing at once ([tool.notebook_orch.concurrency], core/pools.py); none by default.
    concurrency: ConcurrencySpec = ConcurrencySpec()

    def __post_init__(self) -> None:
        # A config built in code (tests, embedding applications) gets the same check as one read from files.
        check_heartbeat_timeout(self.heartbeat_timeout_s, where="heartbeat_timeout_s")


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def check_heartbeat_timeout(value: Any, *, where: str) -> float:
    """``value`` as a number of seconds in range, or a ``ConfigError`` naming ``where``."""
    expected = (f"a number of seconds above 0 and at most {MAX_HEARTBEAT_TIMEOUT_S:g} "
                f"(default {DEFAULT_HEARTBEAT_TIMEOUT_S:g})")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where} must be {expected}, not {_shown(value)}.")
    number = float(value)
    if math.isnan(number) or not 0 < number <= MAX_HEARTBEAT_TIMEOUT_S:
        why = (" (zero or less would presume every live run dead and reap it)" if number <= 0 else "")
        raise ConfigError(f"{where} must be {expected}, not {value!r}{why}.")
    return number


def _shown(value: Any) -> str:
    kind = {dict: "a table", list: "an array", bool: "a boolean", str: "a string"}.get(type(value))
    if hasattr(value, "isoformat"):  # TOML dates and times
        return f"a {type(value).__name__} ({value.isoformat()})"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{kind} ({text})" if kind else f"{type(value).__name__} {text}"


def _path_text(value: Any, *, where: str, what: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string ({what}), not {_shown(value)}.")
    if not value.strip():
        raise ConfigError(f"{where} is empty; give {what}, or remove it to use the default.")
    if "\x00" in value:
        raise ConfigError(f"{where} contains a NUL character, which no path or URL may hold; fix the value.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8 arrive from the environment as lone surrogates
        raise ConfigError(f"{where} is not UTF-8 text ({_shown(value)}); set it to a UTF-8 path or URL.") from None
    return value


def _read_table(pyproject: Path) -> dict[str, Any]:
    try:
        raw = pyproject.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{pyproject} cannot be read ({exc.strerror or exc}); fix its permissions.") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{pyproject} is not UTF-8 text ({exc.reason} at byte {exc.start}); TOML files must be UTF-8: "
            "save it again as UTF-8."
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{pyproject} is not valid TOML ({exc}); fix it or remove it.") from None
    tool = data.get("tool", {})
    if not isinstance(tool, dict):
        raise ConfigError(f"{pyproject}: 'tool' must be a table ([tool.notebook_orch]), not {_shown(tool)}.")
    table = tool.get("notebook_orch", {})
    if not isinstance(table, dict):
        raise ConfigError(
            f"{pyproject}: tool.notebook_orch must be a table ([tool.notebook_orch] with keys "
            f"{sorted(_KEYS)}), not {_shown(table)}."
        )
    unknown = set(table) - _KEYS
    if unknown:
        raise ConfigError(
            f"{pyproject}: unknown key(s) {sorted(unknown)} in [tool.notebook_orch]; known: {sorted(_KEYS)}."
        )
    return table


def _plain_text(table: dict, key: str, pyproject: Path) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{pyproject}: [tool.notebook_orch] {key} must be a non-empty string, not {_shown(value)}"
                          f"; e.g. executor = \"dask\", dask_address = \"tcp://scheduler:8786\".")
    return value.strip()


def _command(table: dict, key: str, pyproject: Path) -> tuple[str, ...] | None:
    """A command as argv: a string split like a shell would (no shell runs it), or an array of strings."""
    value = table.get(key)
    if value is None:
        return None
    fix = (f"; e.g. {key} = \"python alert.py\" or {key} = [\"notify-send\", \"nbo\"] (the alert arrives as JSON "
           "on stdin)")
    if isinstance(value, str):
        import shlex

        try:
            argv = shlex.split(value)
        except ValueError as exc:
            raise ConfigError(f"{pyproject}: [tool.notebook_orch] {key} {value!r} cannot be split ({exc}){fix}.") \
                from None
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        argv = list(value)
    else:
        raise ConfigError(f"{pyproject}: [tool.notebook_orch] {key} must be a string or an array of strings, not "
                          f"{_shown(value)}{fix}.")
    if not argv or not argv[0].strip():
        raise ConfigError(f"{pyproject}: [tool.notebook_orch] {key} is empty{fix}, or remove it.")
    return tuple(argv)


_CONCURRENCY_KEYS = ("max_runs", "assets", "pools")
_CONCURRENCY_EXAMPLE = ("[tool.notebook_orch.concurrency] with max_runs = 4, assets = { orders_daily = 1 }, "
                        "pools = { warehouse = 2 }")


def _concurrency(value: Any, pyproject: Path) -> ConcurrencySpec:
    """``[tool.notebook_orch.concurrency]``, every value a whole number of runs from 1 to MAX_LIMIT."""
    if value is None:
        return ConcurrencySpec()
    where = f"{pyproject}: [tool.notebook_orch.concurrency]"
    if not isinstance(value, dict):
        raise ConfigError(f"{pyproject}: [tool.notebook_orch] concurrency must be a table ({_CONCURRENCY_EXAMPLE}), "
                          f"not {_shown(value)}.")
    unknown = sorted(set(value) - set(_CONCURRENCY_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {list(_CONCURRENCY_KEYS)}.")

    def limit(number: Any, name: str) -> int:
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_LIMIT:
            raise ConfigError(f"{where} {name} must be a whole number of runs from 1 to {MAX_LIMIT:,}, not "
                              f"{_shown(number)}.")
        return number

    def table_of(key: str) -> dict[str, int]:
        found = value.get(key, {})
        if not isinstance(found, dict):
            raise ConfigError(f"{where} {key} must be a table of name = limit, e.g. {key} = {{ name = 2 }}, not "
                              f"{_shown(found)}.")
        return {str(k): limit(v, f"{key}.{k}") for k, v in found.items()}

    max_runs = value.get("max_runs")
    return ConcurrencySpec(max_runs=None if max_runs is None else limit(max_runs, "max_runs"),
                           assets=table_of("assets"), pools=table_of("pools"))


def load_config(root: str | Path | None = None) -> ProjectConfig:
    root = Path(root or os.getcwd()).resolve()
    if not root.is_dir():
        # Never create a store (or anything) in a folder the user did not make: a mistyped -C would otherwise grow
        # a fresh empty project there.
        what = "is not a folder" if root.exists() else "does not exist"
        raise ConfigError(f"The project folder {root} {what}; give the folder that holds the project (nbo -C DIR, "
                          "Project(DIR) or NBO_PROJECT).")
    table: dict = {}
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        table = _read_table(pyproject)

    def setting(key: str, what: str) -> str | None:
        env = os.environ.get(_ENV[key])
        if env:
            return _path_text(env, where=f"Environment variable {_ENV[key]}", what=what)
        if key in table:
            return _path_text(table[key], where=f"{pyproject}: [tool.notebook_orch] {key}", what=what)
        return None

    notebooks = setting("notebooks", "the folder of the project's notebooks, relative to the project") or "notebooks"
    data = setting("data", "the folder for stored values, relative to the project") or ".notebook_orch/data"
    store = setting("store", "a database URL such as sqlite:///.notebook_orch/store.db, or a SQLite file path")
    if not store:
        store = _sqlite_url(root / DEFAULT_STORE)
    elif "://" not in store:  # a bare path means a SQLite file, relative to the project
        store = _sqlite_url((root / store).resolve())
    env_timeout = os.environ.get(_ENV["heartbeat_timeout"])
    if env_timeout:
        where = f"Environment variable {_ENV['heartbeat_timeout']}"
        try:
            parsed: Any = float(env_timeout.strip())
        except ValueError:
            parsed = env_timeout  # refused below, naming the variable
        timeout = check_heartbeat_timeout(parsed, where=where)
    elif "heartbeat_timeout" in table:
        timeout = check_heartbeat_timeout(table["heartbeat_timeout"],
                                          where=f"{pyproject}: [tool.notebook_orch] heartbeat_timeout")
    else:
        timeout = DEFAULT_HEARTBEAT_TIMEOUT_S
    executor = _plain_text(table, "executor", pyproject) or "local"
    dask_address = _plain_text(table, "dask_address", pyproject)
    alert_command = _command(table, "alert_command", pyproject)
    concurrency = _concurrency(table.get("concurrency"), pyproject)
    return ProjectConfig(
        alert_command=alert_command,
        concurrency=concurrency,
        executor=executor,
        dask_address=dask_address,
        root=root,
        notebooks=(root / notebooks).resolve(),
        store_url=store,
        data_dir=(root / data).resolve(),
        heartbeat_timeout_s=timeout,
    )
