"""Code versions and helper-cell selection: pure, no disk, no kernel."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from notebook_orch.core.codeversion import (
    VERSION_LENGTH,
    code_version,
    defined_names,
    is_analysable,
    normalize_source,
    select_helpers,
    used_names,
)

BODY = """\
import pandas as pd

def clean(df):
    '''Drop bad rows.'''
    return df[df.amount > THRESHOLD]

sales = clean(raw)
"""


# -- normalisation ------------------------------------------------------------------------------------------
def test_comments_blank_lines_and_layout_do_not_count() -> None:
    rewritten = """\
# the imports
import pandas   as pd   # pandas


def clean( df ):
    # keep only real sales
    return df[ df.amount>THRESHOLD ]
sales = clean(
    raw,
)
"""
    assert normalize_source(rewritten) == normalize_source(BODY)
    assert code_version(rewritten, []) == code_version(BODY, [])


def test_docstrings_do_not_count_but_other_strings_do() -> None:
    with_doc = '"""Module doc."""\ndef f():\n    """Function doc."""\n    return 1\nclass K:\n    """Class doc."""\n'
    without = "def f():\n    return 1\nclass K:\n    pass\n"
    assert normalize_source(with_doc) == normalize_source(without)
    assert normalize_source("x = 'a'") != normalize_source("x = 'b'")


def test_a_real_change_changes_the_version() -> None:
    assert code_version(BODY, []) != code_version(BODY.replace(">", ">="), [])
    assert code_version(BODY, []) != code_version(BODY.replace("raw", "raw_v2"), [])


def test_helpers_count_in_order() -> None:
    a, b = "X = 1", "Y = 2"
    assert code_version(BODY, [a, b]) != code_version(BODY, [a])
    assert code_version(BODY, [a, b]) != code_version(BODY, [b, a])
    assert code_version(BODY, ["X  =  1  # one"]) == code_version(BODY, [a])
    # the asset body and a helper are kept apart: moving code between them is a change
    assert code_version("X = 1\nY = 2", []) != code_version("X = 1", ["Y = 2"])


def test_version_is_short_hex() -> None:
    version = code_version(BODY, ["X = 1"])
    assert re.fullmatch(r"[0-9a-f]+", version)
    assert len(version) == VERSION_LENGTH
    assert 16 <= VERSION_LENGTH <= 24


def test_ipython_lines_do_not_crash_and_still_count() -> None:
    source = (
        "%matplotlib inline\n"
        "!pip install tqdm\n"
        "files = !ls data\n"
        "for f in files:\n"
        "    !echo {f}\n"
        "%time result = clean(df)\n"
        "clean?\n"
    )
    assert is_analysable(source)
    assert "matplotlib inline" in normalize_source(source)
    assert normalize_source(source) == normalize_source(source.replace("\n", "  # note\n\n", 1))
    assert normalize_source(source) != normalize_source(source.replace("%time", "%timeit"))
    assert {"files", "result"} <= defined_names(source)  # %time runs (and binds) its statement
    assert {"clean", "df"} <= used_names(source)
    assert "pip" not in used_names(source)  # shell words are not Python names


def test_timing_magics_run_their_statement() -> None:
    assert defined_names("%time total = helper(raw)") == {"total"}
    assert used_names("%time total = helper(raw)") == {"helper", "raw"}
    assert normalize_source("%time total = f()") != normalize_source("total = f()")
    assert normalize_source("%time total = f()") != normalize_source("%timeit total = f()")
    assert defined_names("%timeit -n 3 total = f()") == set()  # options: kept as text, still no crash


def test_cell_magics() -> None:
    timed = "%%time\ntotal = helper(1)\n"
    assert defined_names(timed) == {"total"}
    assert used_names(timed) == {"helper"}
    bash = "%%bash\n# say hello\necho hello\n\n"
    assert not is_analysable(bash)
    assert defined_names(bash) == set()
    assert normalize_source(bash) == normalize_source("%%bash\necho hello")
    assert normalize_source(bash) != normalize_source("%%bash\necho bye")
    written = "%%writefile job.py\nx = 1\n"
    assert defined_names(written) == set()  # the body is written to a file, not run


def test_unparseable_source_falls_back_to_text_and_never_raises() -> None:
    broken = "def f(:\n    # a comment\n    return   1\n"
    assert not is_analysable(broken)
    assert normalize_source(broken) == normalize_source("def f(:\n\n        return   1")
    assert normalize_source(broken) != normalize_source("def g(:\n    return 1")
    for odd in ["", "\x00", "(" * 500 + ")" * 500, "x = '\\d'", "\ufeffx = 1", "print(x?)"]:
        normalize_source(odd)
        defined_names(odd)
        used_names(odd)


# -- names --------------------------------------------------------------------------------------------------
def test_defined_names() -> None:
    source = """\
import os, numpy.linalg
import pandas as pd
from pathlib import Path as P, PurePath
a, (b, *c) = 1, (2, 3, 4)
d: int = 5
e: str
f += 1
g = h = 0
(i := 6)
def fn(): local = 1
async def afn(): pass
class K: attr = 1
for j in range(3): inner = j
with open(os.devnull) as fh: pass
try:
    import tomllib
except ImportError as err:
    tomllib = None
obj.attr = 1
table["col"] = 2
"""
    assert defined_names(source) == {
        "os", "numpy", "pd", "P", "PurePath", "a", "b", "c", "d", "e", "f", "g", "h", "i", "fn", "afn", "K",
        "j", "inner", "fh", "tomllib", "err",
    }  # fmt: skip


def test_used_names_include_function_bodies_decorators_and_defaults_but_not_locals() -> None:
    source = """\
@register(REGISTRY)
def transform(df, factor=DEFAULT_FACTOR, *args, **kwargs):
    scaled = df * factor
    return [helper(x) for x in scaled if x > LIMIT] + list(map(lambda v: v + OFFSET, args))

total = transform(raw)
total += 1
"""
    assert used_names(source) == {
        "register", "REGISTRY", "DEFAULT_FACTOR", "helper", "LIMIT", "list", "map", "OFFSET", "transform", "raw",
        "total",
    }  # fmt: skip


def test_global_declared_names_stay_visible() -> None:
    assert "counter" in used_names("def bump():\n    global counter\n    counter = counter + 1\n")


# -- helper selection ---------------------------------------------------------------------------------------
CELLS = [
    (1, "import pandas as pd\nimport matplotlib.pyplot as plt"),
    (2, "THRESHOLD = 10"),
    (3, "def clean(df):\n    return df[df.amount > THRESHOLD]"),
    (5, "sales.plot()\nplt.show()"),
    (6, "print('hello')"),
    (7, "UNUSED = 3"),
]


def test_selects_what_the_asset_uses_transitively_in_cell_order() -> None:
    asset = "sales = clean(pd.read_csv('sales.csv'))"
    assert select_helpers(asset, CELLS) == [1, 2, 3]
    assert select_helpers("x = THRESHOLD", CELLS) == [2]
    assert select_helpers("x = 1", CELLS) == []


def test_plot_and_print_cells_are_never_selected() -> None:
    asset = "sales = clean(pd.read_csv('sales.csv'))\nsales.plot()\nprint(sales)"
    assert 5 not in select_helpers(asset, CELLS)
    assert 6 not in select_helpers(asset, CELLS)


def test_only_cells_above_the_asset_count() -> None:
    assert select_helpers("sales = clean(pd.read_csv('s.csv'))", CELLS, before=3) == [1]


def test_the_last_definition_wins() -> None:
    cells = [(0, "def clean(df):\n    return df"), (1, "def clean(df):\n    return df.dropna()")]
    assert select_helpers("x = clean(raw)", cells) == [1]
    # ... unless it reads the earlier one (x = x + 1) ...
    cells = [(0, "N = 1"), (1, "N = N + 1")]
    assert select_helpers("x = N", cells) == [0, 1]
    cells = [(0, "N = 1"), (1, "N += 1")]
    assert select_helpers("x = N", cells) == [0, 1]
    # ... or binds it only on some paths
    cells = [(0, "N = 1"), (1, "if DEBUG:\n    N = 2"), (2, "DEBUG = False")]
    assert select_helpers("x = N", cells) == [0, 1]


def test_a_star_import_may_define_anything() -> None:
    cells = [(0, "LIMIT = 1"), (1, "from settings import *"), (2, "print('hi')")]
    assert select_helpers("x = LIMIT", cells) == [0, 1]


def test_names_bound_in_the_asset_before_use_are_not_looked_up() -> None:
    cells = [(0, "df = load_everything()"), (1, "import pandas as pd")]
    assert select_helpers("df = pd.read_csv('x.csv')\nsales = df.dropna()", cells) == [1]
    assert select_helpers("sales = df.dropna()", cells) == [0]


def test_function_parameters_do_not_pull_in_cells() -> None:
    cells = [(0, "df = explore()"), (1, "def clean(df):\n    return df.dropna()")]
    assert select_helpers("sales = clean(raw)", cells) == [1]


def test_ipython_lines_in_helpers_and_assets() -> None:
    cells = [(0, "%load_ext notebook_orch\n%matplotlib inline"), (1, "rows = !wc -l data.csv"), (2, "import time")]
    assert select_helpers("%time n = int(rows[0].split()[0])", cells) == [1]


# -- properties ---------------------------------------------------------------------------------------------
STATEMENTS = [
    "x = 1",
    "y = x + 2",
    "import os",
    "from math import sqrt as root",
    "def f(a, b=3):\n    return a * b + root(a)",
    "class K:\n    '''doc'''\n    n = 1",
    "for i in range(3):\n    y += i",
    "if x > 0:\n    z = [v ** 2 for v in range(x)]\nelse:\n    z = []",
    "s = 'a # not a comment'",
    "%matplotlib inline",
    "files = !ls",
    "with open(os.devnull) as fh:\n    data = fh.read()",
]
COMMENTS = st.sampled_from(["", "# note", "#", "# TODO: fix", "    # indented", "\t# tab"])


@st.composite
def sources_with_noise(draw: st.DrawFn) -> tuple[str, str]:
    lines = "\n".join(draw(st.lists(st.sampled_from(STATEMENTS), min_size=1, max_size=8))).split("\n")
    noisy = []
    for line in lines:
        noisy.extend(draw(st.lists(COMMENTS, max_size=2)))
        trailing = draw(st.sampled_from(["", "  # why", "   ", "\t"]))
        noisy.append(line + trailing)
    noisy.extend(draw(st.lists(COMMENTS, max_size=2)))
    return "\n".join(lines), "\n".join(noisy)


@settings(max_examples=200, deadline=None)
@given(sources_with_noise())
def test_comments_and_blank_lines_never_change_the_version(pair: tuple[str, str]) -> None:
    clean, noisy = pair
    assert code_version(noisy, [noisy]) == code_version(clean, [clean])
    assert defined_names(noisy) == defined_names(clean)
    assert used_names(noisy) == used_names(clean)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_never_raises(text: str) -> None:
    code_version(text, [text])
    select_helpers(text, [(0, text), (1, text)])
