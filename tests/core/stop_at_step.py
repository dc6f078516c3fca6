"""`laser ARGS` that signals itself right after it logs a given step: a real kill or Ctrl-C at a
known step, for the resume tests. Runs alone or under torchrun (each rank writes its final
parameters and buffers to rank{i}.safetensors, so the test can compare ranks).

    python stop_at_step.py STEP SIGNALS RANK -- laser arguments...

SIGNALS is comma-separated signal names sent in a row (``INT,INT`` is a second Ctrl-C),
``none`` for an uninterrupted run; RANK is the process that receives them.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from accelerate import PartialState
from safetensors.torch import save_file

from laser_core.cli.main import main
from laser_core.training import train as training


def signal_after(step: int, signals: list[str], rank: int = 0):
    """A replacement for the loop's train logging that signals this process after ``step``."""
    log_train = training._Loop._log_train

    def log_then_signal(self, logged: int, sums):
        record = log_train(self, logged, sums)
        if logged == step and PartialState().process_index == rank:
            for name in signals:
                os.kill(os.getpid(), getattr(signal, f"SIG{name}"))
        return record

    return log_then_signal


def save_weights_and_rank_state(accelerator, model, run_dir: Path) -> None:
    save_weights(accelerator, model, run_dir)
    state = accelerator.unwrap_model(model).state_dict()
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    save_file(tensors, str(run_dir / f"rank{accelerator.process_index}.safetensors"))


save_weights = training.save_weights

if __name__ == "__main__":
    step, names, rank = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    if names != "none":
        training._Loop._log_train = signal_after(step, names.split(","), rank)
    training.save_weights = save_weights_and_rank_state
    sys.exit(main(sys.argv[sys.argv.index("--") + 1 :]))
