"""Repeated examples in the pool: exact duplicates are dropped, and an input found under more
than one label is resolved as `data.conflicting_labels` says.

- `"error"` (the default): stop, naming two places and the count, and the option.
- `"drop"`: leave out every copy of such an example.
- `"majority"`: keep one copy, with its most frequent label; a tie leaves it out.

`Conflicts` records what was found and done (run.json `conflicting_labels`, the log, the
report's data section). An example is its input as a reader gives it: a text, or an image's
path (images are compared by path, not by content).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Protocol

from ftk.errors import DataError

SHOWN = 5  # examples recorded (run.json, log, report)
SNIPPET = 60  # characters of an input shown
ORIGINS = 5  # places listed per example


class _Row(Protocol):  # `ftk.data.splits.Row`
    input: str
    label: str
    origin: str


@dataclass(frozen=True)
class Conflict:
    """One input found under more than one label: its start, how often each label, where
    (the first `ORIGINS` places), and the label kept (`None`: every copy left out)."""

    input: str
    labels: dict[str, int]
    origins: list[str]
    kept: str | None


@dataclass
class Conflicts:
    """The inputs found under more than one label (`count`), the policy, how many rows were
    left out for them, how many `"majority"` ties were dropped, and the first `SHOWN`."""

    policy: str = "error"
    count: int = 0
    rows_removed: int = 0
    ties: int = 0
    examples: list[Conflict] = field(default_factory=list)

    def add(self, group: list[_Row], counts: Counter, kept: str | None) -> None:
        self.count += 1
        self.rows_removed += len(group) - (kept is not None)
        self.ties += self.policy == "majority" and kept is None
        if len(self.examples) < SHOWN:
            self.examples.append(
                Conflict(
                    input=shorten(group[0].input),
                    labels=dict(counts.most_common()),
                    origins=[row.origin for row in group[:ORIGINS]],
                    kept=kept,
                )
            )

    def to_json(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """One line for the log: the count, what was done, and the recorded examples."""
        return summary(self.to_json())


def shorten(text: str, limit: int = SNIPPET) -> str:
    """`text` on one line, cut to `limit` characters (an ellipsis marks the cut)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def summary(record: dict) -> str:
    """One line from a `Conflicts.to_json()` record (run.json `conflicting_labels`)."""
    policy = record["policy"]
    if policy == "majority":
        done = f"kept the most frequent label of {record['count'] - record['ties']}"
        done += f", left out {record['ties']} tie(s)" if record["ties"] else ""
    else:
        done = "left out every copy"
    shown = "; ".join(
        f"{e['input']!r} "
        + ", ".join(f"{label}: {n}" for label, n in e["labels"].items())
        + f" ({', '.join(e['origins'])})"
        + (f" -> kept {e['kept']!r}" if e["kept"] is not None else " -> left out")
        for e in record["examples"]
    )
    more = record["count"] - len(record["examples"])
    return (
        f"{record['count']} example(s) appear under more than one label "
        f'(data.conflicting_labels = "{policy}"): {done}; {record["rows_removed"]} row(s) '
        f"left out. {shown}" + (f"; and {more} more" if more > 0 else "")
    )


def _majority(counts: Counter) -> str | None:
    """The most frequent label, or `None` on a tie."""
    (top, n), *rest = counts.most_common()
    return None if rest and rest[0][1] == n else top


def resolve(rows: list[_Row], policy: str = "error") -> tuple[list, int, Conflicts]:
    """`(kept rows, exact duplicates dropped, conflicts)`; the rows keep their order.

    Rows with the same input and label are exact duplicates: the first is kept. An input
    under more than one label is a conflict, resolved by `policy` (its rows are counted in
    `Conflicts.rows_removed`, not in the duplicates). Raises `DataError` for `"error"`.
    """
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(row.input, []).append(i)
    keep: set[int] = set()
    conflicts = Conflicts(policy=policy)
    duplicates, first = 0, None
    for indices in groups.values():
        group = [rows[i] for i in indices]
        counts = Counter(row.label for row in group)
        if len(counts) == 1:
            keep.add(indices[0])
            duplicates += len(indices) - 1
            continue
        first = first or group
        kept = _majority(counts) if policy == "majority" else None
        if kept is not None:
            keep.add(next(i for i in indices if rows[i].label == kept))
        conflicts.add(group, counts, kept)
    if first is not None and policy == "error":
        other = next(row for row in first if row.label != first[0].label)
        raise DataError(
            f"The same example has two labels: {first[0].label!r} at {first[0].origin} and "
            f"{other.label!r} at {other.origin} ({conflicts.count} example(s) have more than "
            'one label). Fix or remove one of them, or set data.conflicting_labels = "drop" '
            'or "majority" to resolve it.'
        )
    return [row for i, row in enumerate(rows) if i in keep], duplicates, conflicts
