"""Mutants of every shipped recipe through what `laser validate` runs: never a traceback,
never a hang, every clearly wrong one rejected and every valid one accepted.

The mutants and their verdicts are in tests/recipes/mutants.py. Most are checked as far as the
recipe goes (milliseconds); the few whose fault shows only in the assembled components (an
encoder downsampling past the image, a discriminator too deep for it) go through the whole of
`laser validate`, components built.
"""

from __future__ import annotations

from tests.recipes.mutants import CLASSES, mutants, run

MUTANTS = mutants()


def test_the_mutants_cover_every_class_of_the_issue():
    assert len(MUTANTS) >= 300
    assert {m.kind for m in MUTANTS} == set(CLASSES)
    assert {m.kind for m in MUTANTS if m.verdict == "wrong"} == set(CLASSES) - {"valid variants"}
    assert len({m.id for m in MUTANTS}) == len(MUTANTS), "ids are unique"
    assert any(m.assembled for m in MUTANTS), "some need the components built"


def test_every_mutant_is_a_clean_error_or_accepted_as_its_verdict_says(tmp_path):
    """One test for all of them (a few seconds), listing every failure at once."""
    failures = []
    for number, mutant in enumerate(MUTANTS):
        folder = tmp_path / str(number)
        folder.mkdir()
        outcome = run(mutant, folder)
        if outcome.result in ("traceback", "hang") or outcome.seconds >= mutant.time_limit:
            failures.append(
                f"{mutant.id}: {outcome.result} in {outcome.seconds:.2f} s\n{outcome.detail}"
            )
        elif mutant.verdict == "wrong" and outcome.result != "rejected":
            failures.append(f"{mutant.id}: clearly wrong, accepted")
        elif mutant.verdict == "fine" and outcome.result != "accepted":
            failures.append(f"{mutant.id}: valid, rejected:\n{outcome.detail}")
    assert not failures, "\n".join(failures)
