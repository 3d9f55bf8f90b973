"""One seeded, group-aware train/validation/test split of examples.

Examples are first deduplicated by an optional key (the first example of each key is kept).
Their groups (a group key per example, e.g. the image several captions describe) are then
shuffled with `random.Random(seed)`, in the order they first appear, and dealt out whole:
the first groups to test, the next to validation, the rest to train, so no group lands in two
splits. With `folds` > 1 the test split is every `folds`-th shuffled group from `fold` on
instead (cross-validation: the folds partition the groups). Sizes count groups: a non-zero
fraction gives at least one group. Example order follows the shuffled groups, input order
inside a group.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Hashable, Sequence

from pipelines.errors import DataError


@dataclasses.dataclass(frozen=True)
class IndexSplits:
    """Example indices (into the inputs of `group_split`) of each split."""

    train: list[int]
    validation: list[int]
    test: list[int]
    # Examples dropped because their key was already seen.
    duplicates: int


def _part_size(count: int, fraction: float) -> int:
    return max(1, round(count * fraction)) if fraction else 0


def group_split(
    groups: Sequence[Hashable],
    validation_fraction: float,
    test_fraction: float,
    seed: int,
    keys: Sequence[Hashable] | None = None,
    folds: int = 0,
    fold: int = 0,
    limit: int = 0,
) -> IndexSplits:
    """Splits examples by their `groups` (see the module docstring).

    Args:
        groups: one group key per example; a group's examples share one split.
        validation_fraction: share of the groups for validation, in [0, 1).
        test_fraction: share of the groups for test, in [0, 1); unused when `folds` > 1.
        seed: the shuffle seed.
        keys: one deduplication key per example, or `None` to keep every example.
        folds: with more than 1, test is fold `fold` of `folds`.
        fold: the test fold, in [0, folds).
        limit: if positive, each split keeps only its first groups, in proportion to its
            share, `limit` groups in all (a smaller run whose validation and test groups are
            those the full run starts with).

    Returns:
        `IndexSplits` of example indices.
    """
    for name, value in (
        ("validation_fraction", validation_fraction),
        ("test_fraction", test_fraction),
    ):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"`{name}` must be in [0, 1). Received: {name}={value!r}")
    if folds > 1 and not 0 <= fold < folds:
        raise ValueError(f"`fold` must be in [0, {folds}). Received: fold={fold!r}")
    if keys is not None and len(keys) != len(groups):
        raise ValueError(
            f"`keys` must have one entry per example ({len(groups)}). Received: {len(keys)}"
        )
    members: dict[Hashable, list[int]] = {}
    seen = set()
    for index, group in enumerate(groups):
        if keys is not None:
            if keys[index] in seen:
                continue
            seen.add(keys[index])
        members.setdefault(group, []).append(index)
    order = list(members)
    random.Random(seed).shuffle(order)
    validation_size = _part_size(len(order), validation_fraction)
    if folds > 1:
        test_share = 1 / folds
        test = order[fold::folds]
        rest = [group for position, group in enumerate(order) if position % folds != fold]
    else:
        test_share = test_fraction
        test_size = _part_size(len(order), test_fraction)
        test, rest = order[:test_size], order[test_size:]
    if len(test) + validation_size >= len(order):
        raise DataError(
            f"{len(order)} distinct groups are too few for validation_fraction="
            f"{validation_fraction} and "
            + (f"{folds} folds" if folds > 1 else f"test_fraction={test_fraction}")
        )
    validation, train = rest[:validation_size], rest[validation_size:]
    if limit > 0:
        test = test[: _part_size(limit, test_share)]
        validation = validation[: _part_size(limit, validation_fraction)]
        train = train[: max(limit - len(test) - len(validation), 0)]

    def indices(part: list[Hashable]) -> list[int]:
        return [index for group in part for index in members[group]]

    return IndexSplits(
        train=indices(train),
        validation=indices(validation),
        test=indices(test),
        duplicates=len(groups) - sum(len(indices) for indices in members.values()),
    )
