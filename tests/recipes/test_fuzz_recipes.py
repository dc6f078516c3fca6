"""Mutants of every shipped recipe through what `laser validate` runs: never a traceback,
never a hang, every clearly wrong one rejected and every valid one accepted.

The mutants and their verdicts are in tests/recipes/mutants.py. ``pending`` ones are clearly
wrong but need checks other branches add; they are expected to fail until those land, and then
their verdict becomes ``wrong``.
"""

from __future__ import annotations

import pytest

from tests.recipes.mutants import CLASSES, TIME_LIMIT_S, Mutant, mutants, run

MUTANTS = mutants()
PENDING = [m for m in MUTANTS if m.verdict == "pending"]


def test_the_mutants_cover_every_class_of_the_issue():
    assert len(MUTANTS) >= 300
    assert {m.kind for m in MUTANTS} == set(CLASSES)
    assert {m.kind for m in MUTANTS if m.verdict == "wrong"} == set(CLASSES) - {"valid variants"}
    assert len({m.id for m in MUTANTS}) == len(MUTANTS), "ids are unique"


def test_every_mutant_is_a_clean_error_or_accepted_as_its_verdict_says(tmp_path):
    """One test for all of them (a few seconds), listing every failure at once."""
    failures = []
    for number, mutant in enumerate(m for m in MUTANTS if m.verdict != "pending"):
        folder = tmp_path / str(number)
        folder.mkdir()
        outcome = run(mutant, folder)
        if outcome.result in ("traceback", "hang") or outcome.seconds >= TIME_LIMIT_S:
            failures.append(
                f"{mutant.id}: {outcome.result} in {outcome.seconds:.2f} s\n{outcome.detail}"
            )
        elif mutant.verdict == "wrong" and outcome.result != "rejected":
            failures.append(f"{mutant.id}: clearly wrong, accepted")
        elif mutant.verdict == "fine" and outcome.result != "accepted":
            failures.append(f"{mutant.id}: valid, rejected:\n{outcome.detail}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    "mutant",
    [
        pytest.param(m, id=m.id, marks=pytest.mark.xfail(strict=False, reason=m.reason))
        for m in PENDING
    ],
)
def test_pending_mutant_is_rejected_cleanly(mutant: Mutant, tmp_path):
    outcome = run(mutant, tmp_path)
    assert outcome.result == "rejected", f"{outcome.result}\n{outcome.detail}"
