"""RunDir names every file of a run directory, and its docstring and docs/architecture.md
list each of them, so a reader learns a run directory's files from one place."""

from __future__ import annotations

from pathlib import Path

from laser_core.rundir.layout import RunDir

ARCHITECTURE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
NAMES = {value for key, value in vars(RunDir).items() if key.isupper()}


def test_every_file_of_a_trained_run_is_named_by_run_dir(digits_run):
    run_dir, _ = digits_run
    found = {path.name for path in run_dir.iterdir()}
    assert found - NAMES == set()
    assert {RunDir.RECIPE, RunDir.WEIGHTS, RunDir.MANIFEST, RunDir.CHECKPOINTS} <= found


def test_run_dir_and_the_architecture_doc_list_every_file():
    assert len(NAMES) == 15
    for name in NAMES:
        assert f"\n    {name}" in RunDir.__doc__, name
        assert name in ARCHITECTURE.read_text(), f"docs/architecture.md leaves out {name}"
