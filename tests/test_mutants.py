"""tools/mutants.py stays in step with the code: each mutant's snippet stands exactly once in
its file and each of its killing tests exists, so a refactoring cannot quietly disarm it."""

from __future__ import annotations

import importlib.util
import re
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))  # the tools import their shared doc_section
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


def test_the_verdicts_in_the_docs_name_every_mutant():
    """`tools/mutants.py --write` was run since the last mutant was added or renamed."""
    doc = (ROOT / "docs" / "testing.md").read_text()
    block = doc.split(mutants.START)[1].split(mutants.END)[0]
    assert re.findall(r"^\| `([^`]+)` \|", block, re.M) == [m.name for m in mutants.MUTANTS]


def test_killing_tests_that_hang_are_stopped_at_the_limit(tmp_path):
    (tmp_path / "test_hangs.py").write_text(
        "import time\n\ndef test_hangs():\n    time.sleep(600)\n"
    )
    start = time.perf_counter()
    assert mutants.run_tests(tmp_path, ("test_hangs.py",), limit=5) == "timeout"
    assert time.perf_counter() - start < 30
