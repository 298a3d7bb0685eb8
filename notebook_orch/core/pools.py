"""Concurrency pools: how many runs may execute at once — in the whole project, per asset, and per named pool.

Declared in the project's configuration (``[tool.notebook_orch.concurrency]``)::

    max_runs = 4                      # every run of the project, whatever executor or process starts it
    assets = { orders_daily = 1 }     # runs that materialize this asset
    pools = { warehouse = 2 }         # runs of assets declared with ``%%asset NAME --pool warehouse``

A run needs one slot in each pool that applies to it (``run_pools``); the store hands slots out in one transaction
and a run that cannot have all of them waits (status ``WAITING``) holding its partitions, until a run ends and
frees slots. The slots live in the store, so the limits hold across executors, processes and hosts.

Pure: no store, no config file; ``concurrency_problems`` names every mistake at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

GLOBAL_POOL = "global"
ASSET_PREFIX = "asset:"
POOL_PREFIX = "pool:"
MAX_LIMIT = 10_000


@dataclass(frozen=True)
class ConcurrencySpec:
    """The declared limits. Empty (the default): no limit, and runs never touch the pool tables."""

    max_runs: int | None = None
    assets: Mapping[str, int] = field(default_factory=dict)
    pools: Mapping[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.max_runs is None and not self.assets and not self.pools


def pool_key_label(key: str) -> str:
    """How a pool key reads in messages: ``pool warehouse``, ``asset orders_daily``, ``global``."""
    if key.startswith(POOL_PREFIX):
        return f"pool {key[len(POOL_PREFIX):]}"
    if key.startswith(ASSET_PREFIX):
        return f"asset {key[len(ASSET_PREFIX):]}"
    return "max_runs (global)" if key == GLOBAL_POOL else key


def run_pools(spec: ConcurrencySpec, assets: Sequence[str], asset_pools: Mapping[str, Sequence[str]]
              ) -> dict[str, int]:
    """The pools one run of ``assets`` takes a slot in, with their limits (``asset_pools``: asset -> its --pool
    names). A notebook run of several assets takes one slot per pool, however many of its assets name it."""
    limits: dict[str, int] = {}
    if spec.max_runs is not None:
        limits[GLOBAL_POOL] = spec.max_runs
    for asset in assets:
        if asset in spec.assets:
            limits[ASSET_PREFIX + asset] = spec.assets[asset]
        for pool in asset_pools.get(asset, ()):
            if pool in spec.pools:
                limits[POOL_PREFIX + pool] = spec.pools[pool]
    return dict(sorted(limits.items()))


def concurrency_problems(spec: ConcurrencySpec, asset_pools: Mapping[str, Sequence[str]],
                         locations: Mapping[str, str], *, where: str) -> list[str]:
    """Every mismatch between the declared limits and the assets: a ``--pool`` no config declares (its runs would
    silently run unlimited), a per-asset limit naming no asset. ``locations``: asset -> "notebook, cell N"."""
    problems: list[str] = []
    for asset, pools in sorted(asset_pools.items()):
        for pool in pools:
            if pool not in spec.pools:
                problems.append(
                    f"Asset {asset!r} ({locations.get(asset, '?')}) runs in pool {pool!r}, which {where} does not "
                    f"declare{_near(pool, spec.pools)}; add it under [tool.notebook_orch.concurrency] pools, "
                    f"e.g. pools = {{ {pool} = 2 }}, or remove --pool {pool}.")
    for asset in sorted(spec.assets):
        if asset not in asset_pools:
            problems.append(
                f"{where} limits asset {asset!r}, which no notebook defines{_near(asset, asset_pools)}; fix the "
                "name under [tool.notebook_orch.concurrency] assets or remove it.")
    return problems


def _near(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


__all__ = ["ASSET_PREFIX", "ConcurrencySpec", "GLOBAL_POOL", "MAX_LIMIT", "POOL_PREFIX", "concurrency_problems",
           "pool_key_label", "run_pools"]
