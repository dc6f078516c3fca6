"""tools/mutants.py stays in step with the code: each mutant's snippet stands exactly once in
its file and each of its killing tests exists, so a refactoring cannot quietly disarm it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("mutants", ROOT / "tools" / "mutants.py")
mutants = importlib.util.module_from_spec(spec)
sys.modules["mutants"] = mutants  # dataclasses look their module up there
spec.loader.exec_module(mutants)


@pytest.mark.parametrize("mutant", mutants.MUTANTS, ids=lambda m: m.name)
def test_every_mutant_still_applies_and_names_real_tests(mutant):
    assert (ROOT / mutant.file).read_text().count(mutant.original) == 1
    assert mutant.original != mutant.mutated
    for killer in mutant.killers:
        path, _, name = killer.partition("::")
        assert (ROOT / path).is_file(), killer
        assert not name or f"def {name}(" in (ROOT / path).read_text(), killer
