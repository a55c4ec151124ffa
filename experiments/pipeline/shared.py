"""Members that are the same network share one run: members of different rules (every rule's phi 0
is the base; a rule can land on another's network after rounding) are trained once per seed, as the
grid trains duplicate points once (:func:`effnas.scaling.grid.network_key`: the spec without its name)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from effnas.scaling.grid import network_key
from effnas.scaling.runner import Job

#: ``(job, key of the job that trains its network)``: a job that is not run.
Alias = tuple[Job, str]


def share_networks(jobs: Sequence[Job]) -> tuple[list[Job], list[Alias]]:
    """The first job of each (network, seed), in order, and every other job with the key of the one
    that trains its network."""
    first: dict[tuple[str, int], Job] = {}
    unique: list[Job] = []
    aliases: list[Alias] = []
    for job in jobs:
        k = (network_key(job.spec), job.seed)
        if k in first:
            aliases.append((job, first[k].key))
        else:
            first[k] = job
            unique.append(job)
    return unique, aliases


def with_aliases(table: pd.DataFrame, jobs: Sequence[Job], aliases: Sequence[Alias]) -> pd.DataFrame:
    """``table`` (a row per job of ``jobs``) and a row per alias: its own columns and seed, the run's
    results (metrics, measured time, ``run_dir``) of the job that trained its network, and
    ``same_network_as`` naming that job's key."""
    if not aliases:
        return table
    by_key = {j.key: row for j, (_, row) in zip(jobs, table.iterrows(), strict=True)}
    rows = [{**by_key[src].to_dict(), **job.info, "seed": job.seed, "same_network_as": src} for job, src in aliases]
    out = pd.concat([table.assign(same_network_as=""), pd.DataFrame(rows)], ignore_index=True)
    return out


__all__ = ["Alias", "share_networks", "with_aliases"]
