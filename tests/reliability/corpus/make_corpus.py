"""Write the hostile corpus beside this file: ``python tests/reliability/corpus/make_corpus.py``.

The files are committed; this script says how each was made (and remakes them, byte for byte: random bytes come
from a fixed seed). What each one must produce is in ``expected.json``, written by hand.

    notebooks/*.ipynb   one hostile notebook each, checked beside a good notebook with ``nbo validate`` / ``status``
    configs/*.toml      a project's pyproject.toml, checked with ``nbo status``
    stores/*.db         a project's store file (.notebook_orch/store.db), checked with ``nbo status`` / ``runs``
"""

from __future__ import annotations

import gzip
import json
import random
import sqlite3
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def nb(*cells: str | tuple[str, str], nbformat: object = 4, minor: object = 5, ascii_only: bool = True) -> str:
    """A notebook's JSON: each cell a code source, or (cell_type, source)."""
    out = []
    for i, cell in enumerate(cells):
        kind, source = cell if isinstance(cell, tuple) else ("code", cell)
        entry = {"cell_type": kind, "id": f"c{i}", "metadata": {}, "source": source}
        if kind == "code":
            entry.update(execution_count=None, outputs=[])
        out.append(entry)
    return json.dumps({"cells": out, "metadata": {}, "nbformat": nbformat, "nbformat_minor": minor}, indent=1,
                      ensure_ascii=ascii_only)


def asset(line: str, body: str | None = None) -> str:
    name = line.split()[0] if line.split() and line.split()[0].isidentifier() else "x"
    return f"%%asset {line}\n" + (body if body is not None else f"{name} = 1")


DAILY = "--partitions daily:2013-01-01..2013-01-31"
NOTEBOOKS: dict[str, str | bytes] = {
    # -- files that are not notebooks -------------------------------------------------------------------------
    "empty_file": b"",
    "whitespace_only": b"  \n\t\n",
    "truncated_json": nb(asset("cut")).encode()[:70],
    "merge_conflict": ("<<<<<<< HEAD\n" + nb(asset("mine")) + "\n=======\n" + nb(asset("theirs"))
                       + "\n>>>>>>> branch\n").encode(),
    "plain_text": b"this is not a notebook, just notes\n",
    "binary_junk": random.Random(7).randbytes(2048),
    "png_renamed": b"\x89PNG\r\n\x1a\n" + random.Random(8).randbytes(300),
    "gzip_notebook": gzip.compress(nb(asset("zipped")).encode(), mtime=0),
    "latin1_text": nb(asset("caf", "caf = 'caf\u00e9'"), ascii_only=False).encode("latin-1"),
    "utf16_with_bom": nb(asset("wide")).encode("utf-16"),
    "json_array": b"[1, 2, 3]",
    "json_string": b'"a notebook"',
    "json_without_cells": b'{"metadata": {}, "name": "not a notebook"}',
    "deep_nesting": ("[" * 50_000 + "]" * 50_000).encode(),
    # -- notebooks nbformat refuses ---------------------------------------------------------------------------
    "nbformat_99": nb(asset("future"), nbformat=99),
    "nbformat_as_string": nb(asset("stringy"), nbformat="4"),
    "nbformat_3_broken": json.dumps({"nbformat": 3, "nbformat_minor": 0, "worksheets": "not a list"}),
    "cells_not_a_list": json.dumps({"cells": {"0": "x"}, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}),
    "cell_source_number": json.dumps({"cells": [{"cell_type": "code", "source": 42, "metadata": {}, "outputs": [],
                                                 "execution_count": None}],
                                      "metadata": {}, "nbformat": 4, "nbformat_minor": 4}),
    "cell_type_unknown": json.dumps({"cells": [{"cell_type": "sql", "source": "%%asset q\nq = 1", "metadata": {}}],
                                     "metadata": {}, "nbformat": 4, "nbformat_minor": 4}),
    # -- huge content -----------------------------------------------------------------------------------------
    "huge_declaration": nb(asset("big --description " + "x" * 200_000 + " --bogus")),
    "huge_dependency_list": nb(asset("many --deps " + ",".join(f"up_{i}" for i in range(20_000)))),
    "many_unknown_dependencies": nb(asset("many --deps " + ",".join(f"up_{i}" for i in range(1_500)))),
    # -- bad %%asset lines ------------------------------------------------------------------------------------
    "missing_name": nb("%%asset\nx = 1"),
    "missing_name_with_options": nb("%%asset --deps raw\nx = 1"),
    "unknown_option": nb(asset("a --bogus 3")),
    "abbreviated_option": nb(asset("a --dep raw")),
    "two_names": nb(asset("a b")),
    "keyword_name": nb(asset("class", "x = 1")),
    "digit_name": nb(asset("1st", "x = 1")),
    "path_like_name": nb(asset("../escape", "x = 1")),
    "hidden_name": nb(asset(".hidden", "x = 1")),
    "nfkc_ligature_name": nb(asset("\ufb01le", "\ufb01le = 1")),
    "fullwidth_name": nb(asset("\uff53ales", "\uff53ales = 1")),
    "rtl_override_name": nb(asset("a\u202eb", "x = 1")),
    "zero_width_name": nb(asset("a\u200bb", "x = 1")),
    "unterminated_quote": nb(asset('a --description "never closed')),
    "retries_not_a_number": nb(asset("a --retries many")),
    "retries_negative": nb(asset("a --retries -1")),
    "retries_huge": nb(asset("a --retries 99999999999999999999")),
    "io_unknown": nb(asset("a --io csv")),
    "check_not_python": nb(asset('a --check "len(a) >"')),
    "check_nul_byte": nb(asset('a --check "a\x00"')),
    "schedule_bad_cron": nb(asset('a --schedule "61 * * * *"')),
    "sla_bad_time": nb(asset("a --sla 25:00")),
    "option_missing_value": nb(asset("a --partitions")),
    # -- dependencies and mappings ----------------------------------------------------------------------------
    "deps_itself": nb(asset("a --deps a")),
    "deps_twice": nb(asset("raw") , asset("a --deps raw,raw")),
    "dep_malformed_selector": nb(asset("a --deps good[x]")),
    "dep_unclosed_bracket": nb(asset("a --deps good[-1")),
    "dep_offset_huge": nb(asset(f"d {DAILY}"), asset(f"a --deps d[-99999999] {DAILY}")),
    "dep_window_reversed": nb(asset(f"d {DAILY}"), asset(f"a --deps d[0:-6] {DAILY}")),
    "dep_path_like": nb(asset("a --deps ../good")),
    "dep_unknown": nb(asset("a --deps nowhere")),
    "dep_homoglyph": nb(asset("a --deps g\u043eod")),  # a Cyrillic 'o' in 'good'
    "cycle_of_two": nb(asset("ping --deps pong"), asset("pong --deps ping")),
    "cycle_of_three": nb(asset("c1 --deps c3"), asset("c2 --deps c1"), asset("c3 --deps c2")),
    "duplicate_in_notebook": nb(asset("twin"), asset("twin")),
    "duplicate_of_other_notebook": nb(asset("good")),
    "unpartitioned_reads_one_partition": nb(asset(f"d {DAILY}"), asset("a --deps d")),
    "offset_on_static": nb(asset("s --partitions static:us,eu"), asset("a --deps s[-1] --partitions static:us,eu")),
    "offset_across_grains": nb(asset(f"d {DAILY}"), asset("m --deps d[-1] --partitions monthly:2013-01..2013-12")),
    "static_keys_missing_upstream": nb(asset("s --partitions static:us,eu"),
                                       asset("a --deps s --partitions static:us,eu,apac")),
    "body_never_assigns": nb(asset("lonely", "other = 1")),
    # -- partition specs --------------------------------------------------------------------------------------
    "partitions_unknown_kind": nb(asset("a --partitions dayly:2013-01-01")),
    "partitions_bad_date": nb(asset("a --partitions daily:2013-13-01")),
    "partitions_reversed": nb(asset("a --partitions daily:2013-12-31..2013-01-01")),
    "partitions_time_zone": nb(asset("a --partitions daily:2013-01-01T00:00+05:00")),
    "partitions_half_hour": nb(asset("a --partitions hourly:2013-01-01T00:30")),
    "partitions_too_many": nb(asset("a --partitions hourly:1900-01-01..2013-01-01")),
    "partitions_past_year_9999": nb(asset("a --partitions monthly:9999-01..9999-12")),
    "partitions_monthly_mid_month": nb(asset("a --partitions monthly:2013-01-15")),
    "partitions_static_empty": nb(asset("a --partitions static:,")),
    "partitions_static_duplicate": nb(asset("a --partitions static:us,us")),
    "partitions_static_path_key": nb(asset("a --partitions static:us,../etc")),
    "partitions_static_space_key": nb(asset('a --partitions "static:new york"')),
}

CONFIGS: dict[str, bytes] = {
    "not_toml": b"[tool.notebook_orch\nnotebooks = 'nb'\n",
    "not_utf8": b"[tool.notebook_orch]\nnotebooks = 'caf\xe9'\n",
    "tool_not_a_table": b"tool = 3\n",
    "section_not_a_table": b"[tool]\nnotebook_orch = 'notebooks'\n",
    "unknown_key": b"[tool.notebook_orch]\nnotebook = 'nb'\n",
    "heartbeat_as_string": b"[tool.notebook_orch]\nheartbeat_timeout = '120'\n",
    "heartbeat_nan": b"[tool.notebook_orch]\nheartbeat_timeout = nan\n",
    "heartbeat_negative": b"[tool.notebook_orch]\nheartbeat_timeout = -5\n",
    "heartbeat_date": b"[tool.notebook_orch]\nheartbeat_timeout = 1979-05-27\n",
    "heartbeat_zero": b"[tool.notebook_orch]\nheartbeat_timeout = 0\n",
    "heartbeat_huge": b"[tool.notebook_orch]\nheartbeat_timeout = 1e300\n",
    "heartbeat_boolean": b"[tool.notebook_orch]\nheartbeat_timeout = true\n",
    "notebooks_as_table": b"[tool.notebook_orch]\nnotebooks = {path = 'nb'}\n",
    "store_as_array": b"[tool.notebook_orch]\nstore = ['a.db']\n",
    "data_as_number": b"[tool.notebook_orch]\ndata = 5\n",
    "data_empty": b"[tool.notebook_orch]\ndata = ''\n",
    "notebooks_nul": b'[tool.notebook_orch]\nnotebooks = "nb\\u0000x"\n',
    "executor_empty": b"[tool.notebook_orch]\nexecutor = ''\n",
    "duplicate_key": b"[tool.notebook_orch]\nstore = 'a.db'\nstore = 'b.db'\n",
}


def good_store(path: Path) -> None:
    sys.path.insert(0, str(HERE.parents[2]))
    from notebook_orch.store import open_store

    with open_store(f"sqlite:///{path}") as store:
        run = store.start_run(notebook="notebooks/good.ipynb", targets=[("good", "unpartitioned")], kind="manual")
        store.finalize_failure(run.run_id, error="ValueError: boom")
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        raw.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA page_size=512")
    raw.execute("VACUUM")  # small files in the repository
    raw.close()


def stores() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp, "good.db")
        good_store(base)
        whole = base.read_bytes()

        def damaged(statement: str) -> bytes:
            path = Path(tmp, "d.db")
            path.write_bytes(whole)
            with sqlite3.connect(path) as raw:
                raw.execute(statement)
            raw.close()
            return path.read_bytes()

        out["truncated_to_header"] = whole[:100]
        out["truncated_to_first_page"] = whole[:4096]
        out["truncated_in_half"] = whole[: len(whole) // 2]
        out["random_bytes"] = random.Random(11).randbytes(16384)
        out["text_file"] = b"not a database " * 100
        out["sqlite_header_then_junk"] = whole[:16] + random.Random(12).randbytes(8192)
        out["gzipped_store"] = gzip.compress(whole, mtime=0)
        out["newer_schema_version"] = damaged("UPDATE schema_version SET version = 999")
        out["schema_version_not_a_number"] = damaged("UPDATE schema_version SET version = 'abc'")
        out["schema_version_empty"] = damaged("DELETE FROM schema_version")
        out["runs_table_missing"] = damaged("DROP TABLE runs")
        out["garbage_in_a_row"] = damaged("UPDATE runs SET started_at = 'garbage'")
        # old_schema_runs_table_missing.db is not remade: it is a store of schema version 4 with its runs table
        # dropped (the upgrade to the current version cannot run on it).
    return out


def main() -> None:
    for folder, files in (("notebooks", NOTEBOOKS), ("configs", CONFIGS), ("stores", stores())):
        target = HERE / folder
        target.mkdir(exist_ok=True)
        suffix = {"notebooks": ".ipynb", "configs": ".toml", "stores": ".db"}[folder]
        for name, content in files.items():
            data = content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content
            (target / f"{name}{suffix}").write_bytes(data)
    print(f"{sum(len(f) for f in (NOTEBOOKS, CONFIGS))} + {len(stores())} files written under {HERE}")


if __name__ == "__main__":
    main()
