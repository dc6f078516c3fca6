"""Peak GPU memory of one batch_omp call: ``python tools/gpu_omp_memory.py NxMxKxs``."""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F

from laser_core.ops import batch_omp


def main() -> None:
    n, m, k, s = (int(v) for v in sys.argv[1].split("x"))
    device = torch.device("cuda")
    signals = torch.randn(n, m, device=device)
    dictionary = F.normalize(torch.randn(m, k, device=device), dim=0)
    for backend in ("triton", "torch"):
        torch.cuda.synchronize()
        baseline = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        batch_omp(signals, dictionary, s, backend=backend)
        torch.cuda.synchronize()
        extra = (torch.cuda.max_memory_allocated() - baseline) / 2**30
        print(f"batch_omp {backend} at {sys.argv[1]}: peak extra memory {extra:.3f} GiB")


if __name__ == "__main__":
    main()
