"""Patient-level split: no patient on both sides, stratified classes, seeded."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from medtl.data.datalist import Case
from medtl.data.split import split_cases


def _cases(seed: int, patients: int = 23, classes: tuple[str, ...] = ("a", "b", "c")) -> list[Case]:
    rng = random.Random(seed)
    cases = []
    for p in range(patients):
        for k in range(rng.randint(1, 5)):
            patient = f"P{p}" if p % 5 else None  # every fifth "patient" has no id: its cases are single groups
            cases.append(Case(Path(f"/data/{p}_{k}.png"), rng.choice(classes), patient))
    return cases


@pytest.mark.parametrize("seed", range(8))
def test_no_patient_on_both_sides_and_every_class_validated(seed: int) -> None:
    cases = _cases(seed)
    train, val = split_cases(cases, "classification", val_fraction=0.2, seed=seed)
    assert sorted(map(id, train + val)) == sorted(map(id, cases))
    assert not {c.group for c in train} & {c.group for c in val}
    for label in {c.label for c in cases}:
        if len({c.group for c in cases if c.label == label}) >= 2:
            assert any(c.label == label for c in val) and any(c.label == label for c in train)
    assert 0.1 * len(cases) <= len(val) <= 0.45 * len(cases)


def test_rare_class_with_one_patient_stays_in_training() -> None:
    cases = [Case(Path(f"/d/{i}.png"), "common", f"P{i}") for i in range(10)] + [Case(Path("/d/rare.png"), "rare", "R")]
    for seed in range(5):
        train, val = split_cases(cases, "classification", seed=seed)
        assert any(c.label == "rare" for c in train) and not any(c.label == "rare" for c in val)


def test_rare_class_with_two_patients_is_split() -> None:
    cases = [Case(Path(f"/d/{i}.png"), "common", f"P{i}") for i in range(20)]
    cases += [Case(Path("/d/r1.png"), "rare", "R1"), Case(Path("/d/r2.png"), "rare", "R2")]
    for seed in range(5):
        train, val = split_cases(cases, "classification", seed=seed)
        assert sum(c.label == "rare" for c in val) == 1 and sum(c.label == "rare" for c in train) == 1


def test_seeded_and_segmentation_by_group() -> None:
    cases = _cases(3)
    assert split_cases(cases, "segmentation", seed=4) == split_cases(cases, "segmentation", seed=4)
    assert split_cases(cases, "segmentation", seed=4) != split_cases(cases, "segmentation", seed=5)
    train, val = split_cases(cases, "segmentation", seed=4)
    assert val and not {c.group for c in train} & {c.group for c in val}


def test_one_patient_cannot_be_split() -> None:
    cases = [Case(Path(f"/d/{i}.png"), "a", "P") for i in range(4)]
    assert split_cases(cases, "classification") == (cases, [])
