"""``import notebook_orch.storage`` must stay cheap: no pandas, pyarrow or numpy until a value needs them."""

from __future__ import annotations

import subprocess
import sys


def test_importing_storage_does_not_import_pandas_or_pyarrow() -> None:
    code = (
        "import sys, notebook_orch.storage as s\n"
        "s.default_registry().choose({'a': 1}, asset='x')\n"
        "s.combine_partitions({'a': 1})\n"
        "print(sorted(m for m in ('pandas', 'pyarrow', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_json_value_round_trips_without_pandas(tmp_path) -> None:
    code = (
        "import sys, notebook_orch.storage as s\n"
        f"store = s.ValueStore({str(tmp_path)!r})\n"
        "p = store.publish('t', 'unpartitioned', {'a': [1, 2]}, run_id='r1')\n"
        "assert store.load(p) == {'a': [1, 2]}\n"
        "print('pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
