"""Seeded patient-level train/validation split.

The split unit is the patient (:attr:`Case.group`): all cases of one patient land on the same
side, and a case without ``patient_id`` is its own group. For classification the split is
stratified: every class that occurs in at least two groups gets at least one group in
validation while keeping one in training; then groups are added in seeded random order until the
validation side holds ``val_fraction`` of the cases.
"""

from __future__ import annotations

import random
from collections import defaultdict

from medtl.data.datalist import Case


def split_cases(cases: list[Case], task: str, val_fraction: float = 0.2, seed: int = 0) -> tuple[list[Case], list[Case]]:
    """``(training, validation)``. Validation is empty with one group, or when no group can move without
    taking the last training group of one of its classes."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    groups: dict[str, list[Case]] = defaultdict(list)
    for case in cases:
        groups[case.group].append(case)
    if len(groups) < 2:
        return list(cases), []
    order = sorted(groups)
    random.Random(seed).shuffle(order)
    classes_of = {g: {str(c.label) for c in groups[g]} if task == "classification" else set() for g in order}
    validation = _stratify(order, classes_of)
    target = val_fraction * len(cases)
    for group in order:
        if sum(len(groups[g]) for g in validation) >= target or len(validation) >= len(groups) - 1:
            break
        if group not in validation and _movable(group, validation, order, classes_of):
            validation.append(group)
    chosen = set(validation)
    return [c for c in cases if c.group not in chosen], [c for c in cases if c.group in chosen]


def _movable(candidate: str, chosen: list[str], order: list[str], classes_of: dict[str, set[str]]) -> bool:
    """Whether every class of ``candidate`` keeps a training group if it moves to validation."""
    remaining = [g for g in order if g != candidate and g not in chosen]
    return all(any(name in classes_of[g] for g in remaining) for name in classes_of[candidate])


def _stratify(order: list[str], classes_of: dict[str, set[str]]) -> list[str]:
    """One validation group per class that has two or more groups, rarest class first."""
    groups_of: dict[str, list[str]] = defaultdict(list)
    for g in order:
        for label in sorted(classes_of[g]):
            groups_of[label].append(g)
    chosen: list[str] = []
    for label in sorted(groups_of, key=lambda name: (len(groups_of[name]), name)):
        if len(groups_of[label]) < 2 or any(label in classes_of[g] for g in chosen):
            continue
        candidate = next((g for g in groups_of[label] if _movable(g, chosen, order, classes_of)), None)
        if candidate is not None:
            chosen.append(candidate)
    return chosen
