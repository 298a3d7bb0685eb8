"""In a run, plain cells see ``partition_date`` as a ``datetime.date`` too (papermill injects an ISO string)."""

from datetime import date

from IPython.core.interactiveshell import InteractiveShell


def test_injected_partition_date_becomes_a_date_for_every_later_cell():
    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance()
    try:
        shell.run_cell("%load_ext notebook_orch")
        shell.run_cell('partition_date = "2013-01-05"')  # interactive: left alone
        assert shell.user_ns["partition_date"] == "2013-01-05"
        shell.run_cell('nbo_run = {"run_id": "r1"}\npartition_date = "2013-01-05"')  # what papermill injects
        result = shell.run_cell("year = partition_date.year")
        assert result.success and shell.user_ns["year"] == 2013
        assert shell.user_ns["partition_date"] == date(2013, 1, 5)
        shell.run_cell("%unload_ext notebook_orch")
        shell.run_cell('partition_date = "2013-02-01"')
        shell.run_cell("pass")
        assert shell.user_ns["partition_date"] == "2013-02-01"
    finally:
        InteractiveShell.clear_instance()
