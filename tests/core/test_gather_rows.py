"""gather_rows: every process's rows in rank order, whatever each process holds, and which of
them are its own (two gloo processes with 3 and 5 rows)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from laser_core.nn.distributed import gather_rows


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rows_of(rank: int) -> torch.Tensor:
    count = 3 if rank == 0 else 5
    return torch.arange(count * 2, dtype=torch.float32).view(count, 2) + 100 * rank


def _gather(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        gathered, mine = gather_rows(rows_of(rank))
        torch.save((gathered, mine.start, mine.stop), Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_gather_rows_concatenates_uneven_shares_in_rank_order(tmp_path):
    mp.spawn(_gather, args=(_free_port(), str(tmp_path)), nprocs=2)
    expected = torch.cat([rows_of(0), rows_of(1)])
    for rank, own in ((0, (0, 3)), (1, (3, 8))):
        gathered, start, stop = torch.load(tmp_path / f"rank{rank}.pt")
        assert torch.equal(gathered, expected)
        assert (start, stop) == own
        assert torch.equal(gathered[start:stop], rows_of(rank))


def test_gather_rows_in_one_process_returns_the_rows():
    rows = rows_of(0)
    gathered, mine = gather_rows(rows)
    assert gathered is rows and (mine.start, mine.stop) == (0, 3)
