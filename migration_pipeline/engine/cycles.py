"""Circular chains in a parent relation (A's parent is B, B's is C, C's is A).

Twenty would store such a chain without complaint, and every "walk up to the top parent"
in a report or workflow would then never end; so the chain is found before the load.
"""

from __future__ import annotations

from collections.abc import Mapping


def find_cycles(parent_of: Mapping[str, str]) -> list[list[str]]:
    """Every cycle once, as its members in link order, starting at its smallest key."""
    cycles: list[list[str]] = []
    done: set[str] = set()
    for start in sorted(parent_of):
        path: list[str] = []
        on_path: dict[str, int] = {}
        node: str | None = start
        while node is not None and node not in done and node not in on_path:
            on_path[node] = len(path)
            path.append(node)
            node = parent_of.get(node)
        if node is not None and node in on_path:
            cycle = path[on_path[node]:]
            first = cycle.index(min(cycle))
            cycles.append(cycle[first:] + cycle[:first])
        done.update(path)
    return cycles


def describe(cycle: list[str]) -> str:
    return " -> ".join([*cycle, cycle[0]])
