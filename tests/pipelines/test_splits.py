import random

import pytest

from pipelines.errors import DataError
from pipelines.splits import group_split


def test_split_deduplicates_by_key_and_keeps_each_key_in_one_split():
    sources = [f"sentence {index % 50}" for index in range(100)]
    splits = group_split(sources, 0.1, 0.2, seed=3, keys=sources)
    assert splits.duplicates == 50
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (35, 5, 10)
    parts = [{sources[index] for index in part} for part in (splits.train, splits.validation)]
    parts.append({sources[index] for index in splits.test})
    assert sum(len(part) for part in parts) == len(set().union(*parts)) == 50
    assert all(index < 50 for index in splits.train + splits.validation + splits.test)
    assert group_split(sources, 0.1, 0.2, seed=3, keys=sources) == splits
    assert group_split(sources, 0.1, 0.2, seed=4, keys=sources).test != splits.test
    with pytest.raises(DataError, match="too few"):
        group_split(sources[:2], 0.5, 0.4, seed=3)


def test_split_order_is_a_seeded_shuffle_of_the_first_appearances():
    groups = list("abcdefghij")
    order = list(range(10))
    random.Random(7).shuffle(order)
    splits = group_split(groups, 0.2, 0.1, seed=7)
    assert (splits.test, splits.validation, splits.train) == (order[:1], order[1:3], order[3:])


def test_captions_of_one_image_never_share_two_splits():
    images = [f"image{index // 5}" for index in range(100)] + ["image0"] * 3
    captions = [f"caption {index % 7}" for index in range(100)] + ["caption 1"] * 3
    splits = group_split(images, 0.1, 0.1, seed=0, keys=list(zip(images, captions, strict=True)))
    assert splits.duplicates == 3
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (80, 10, 10)
    owner = {}
    for name in ("train", "validation", "test"):
        for index in getattr(splits, name):
            assert owner.setdefault(images[index], name) == name
    first = splits.test[0] - splits.test[0] % 5
    assert splits.test[:5] == list(range(first, first + 5))


def test_folds_partition_the_groups_and_limit_keeps_prefixes():
    groups = list(range(103))
    tests = [group_split(groups, 0.1, 0.0, seed=1, folds=10, fold=fold).test for fold in range(10)]
    assert sorted(sum(tests, [])) == groups
    assert [len(test) for test in tests] == [11, 11, 11] + [10] * 7
    full = group_split(groups, 0.1, 0.0, seed=1, folds=10, fold=2)
    assert len(full.validation) == 10 and not set(full.validation) & set(full.test)
    small = group_split(groups, 0.1, 0.0, seed=1, folds=10, fold=2, limit=40)
    assert small.test == full.test[:4] and small.validation == full.validation[:4]
    assert small.train == full.train[:32]
    with pytest.raises(ValueError, match="fold"):
        group_split(groups, 0.1, 0.0, seed=1, folds=10, fold=10)
