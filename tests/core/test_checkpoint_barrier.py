"""Every process finishes writing a checkpoint before it is renamed into place: two CPU
processes, the second deliberately slow, leave one whole checkpoint with both RNG states."""

from __future__ import annotations

from pathlib import Path

import pytest

from laser_core.rundir import checkpoint
from tests.helpers import run_two_processes


@pytest.mark.slow
def test_a_slow_rank_finishes_its_part_before_the_checkpoint_is_renamed(tmp_path):
    script = Path(__file__).with_name("two_process_checkpoint.py")
    launched = run_two_processes(script, tmp_path)
    assert launched.returncode == 0, launched.stderr[-3000:]
    final = checkpoint.path_for(tmp_path, 5)
    assert checkpoint.complete_checkpoints(tmp_path) == [final]
    assert {p.name for p in final.glob("random_states_*.pkl")} == {
        "random_states_0.pkl",
        "random_states_1.pkl",
    }
    assert not list(checkpoint.checkpoint_dir(tmp_path).glob(".partial-*"))
