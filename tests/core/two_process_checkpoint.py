"""Launched by test_checkpoint_barrier.py under torchrun: two CPU processes save one checkpoint
while rank 1 is deliberately slow to write its part (an Accelerate save hook that sleeps)."""

import sys
import time
from pathlib import Path

import torch
from accelerate import Accelerator

from laser_core.rundir import checkpoint

run_dir = Path(sys.argv[1])
accelerator = Accelerator(cpu=True)
model = torch.nn.Linear(3, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
model, optimizer = accelerator.prepare(model, optimizer)
if accelerator.process_index == 1:
    accelerator.register_save_state_pre_hook(lambda models, weights, folder: time.sleep(2))
checkpoint.save(accelerator, run_dir, checkpoint.TrainerState(step=5, batches_seen=5), keep=2)
