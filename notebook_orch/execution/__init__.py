"""Execution: papermill runs of planned (notebook, partition) groups, with heartbeats and one-transaction finalize.

``executor.execute_run`` runs one planned run (retrying per ``--retries``); ``runner.run_plan`` runs a whole plan
on a pool of worker processes in dependency order; ``warm_engine.WarmKernelEngine`` is a papermill engine that
reuses one kernel per worker so backfills stop paying a kernel start per partition.
"""
