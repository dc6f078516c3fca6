"""Two processes, one model: every bottleneck that learns outside autograd ends with the same
state on both ranks, and, where initialisation and revival are pinned, with the state one
process reaches on the two ranks' batches together (the statistics are sums over processes).

Two gloo processes on tiny tensors, all cases in one launch: seconds, not a training run.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from laser_core.assembly.build import build_component
from laser_core.ops import kmeans, nearest_code
from laser_core.plugin.contracts import BuildContext

DIM, WORLD, STEPS = 4, 2, 3
PINNED = {"kmeans_init": False, "revive_dead_codes": False}  # no draw from rank 0
# Each case: the bottleneck block and whether its state must equal one process on all batches.
CASES: dict[str, tuple[dict[str, Any], bool]] = {
    "vq-ema": ({"name": "vq", "codebook_size": 8, "decay": 0.5, **PINNED}, True),
    "vq-gradient": (
        {"name": "vq", "codebook_size": 32, "update": "gradient", **PINNED},
        True,
    ),
    "rq-ema": ({"name": "rq", "levels": 2, "codebook_size": 8, "decay": 0.5, **PINNED}, True),
    "rq-gradient": (
        {"name": "rq", "levels": 2, "codebook_size": 32, "update": "gradient", **PINNED},
        True,
    ),
    "omp-online": (
        {"name": "omp", "atoms": 8, "sparsity": 2, "update": "online", "revive_dead_atoms": False},
        True,
    ),
    "omp-gradient": (
        {"name": "omp", "atoms": 32, "sparsity": 2, "revive_dead_atoms": False},
        True,
    ),
    "ksvd": (
        {
            "name": "ksvd",
            "atoms": 8,
            "sparsity": 2,
            "ksvd_iterations": 2,
            "revive_dead_atoms": False,
        },
        True,
    ),
    # k-means seeding and revival draw on rank 0 and broadcast: equal ranks, nothing more
    "vq-seeded": ({"name": "vq", "codebook_size": 40, "dead_code_after": 1}, False),
    "rq-seeded": ({"name": "rq", "levels": 2, "codebook_size": 40, "dead_code_after": 1}, False),
    "omp-seeded": ({"name": "omp", "atoms": 40, "sparsity": 2, "dead_atom_after": 1}, False),
    "ksvd-seeded": ({"name": "ksvd", "atoms": 40, "sparsity": 2, "dead_atom_after": 1}, False),
}


def batches() -> list[torch.Tensor]:
    """The combined latents (4, DIM, 4, 4) of each step; rank r takes rows 2r and 2r + 1."""
    generator = torch.Generator().manual_seed(7)
    return [torch.randn(4, DIM, 4, 4, generator=generator) for _ in range(STEPS)]


def train_bottleneck(
    block: dict[str, Any], pinned: bool, rank: int | None
) -> dict[str, torch.Tensor]:
    """STEPS training batches through a bottleneck built with the same weights everywhere;
    ``rank`` None is one process on the combined batches. Returns its final state."""
    torch.manual_seed(0)
    bottleneck = build_component("bottlenecks", block, BuildContext(latent_dim=DIM))
    if pinned and block["name"] in ("omp", "ksvd"):  # keep the random unit atoms
        bottleneck.initialized.fill_(True)
    bottleneck.train()
    torch.manual_seed(100 + (rank or 0))  # different random draws on each rank
    for z in batches():
        shard = z if rank is None else z[2 * rank : 2 * rank + 2]
        bottleneck(shard)
        bottleneck.after_optimizer_step()
    return {k: v.detach().clone() for k, v in bottleneck.state_dict().items()}


def kmeans_shard(rank: int) -> torch.Tensor:
    x = torch.cat([z.permute(0, 2, 3, 1).reshape(-1, DIM) for z in batches()])
    generator = torch.Generator().manual_seed(rank)  # different seeds: rank 0's are used
    return kmeans(x[rank::WORLD], 5, iterations=4, generator=generator)


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        states = {name: train_bottleneck(*case, rank) for name, case in CASES.items()}
        states["kmeans"] = {"centroids": kmeans_shard(rank)}
        torch.save(states, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict[str, dict[str, torch.Tensor]]]:
    out = tmp_path_factory.mktemp("two-processes")
    mp.spawn(_worker, args=(_free_port(), str(out)), nprocs=WORLD)
    return [torch.load(out / f"rank{r}.pt") for r in range(WORLD)]


@pytest.mark.parametrize("case", [*CASES, "kmeans"])
def test_two_processes_end_with_identical_bottleneck_state(ranks, case):
    first, second = ranks[0][case], ranks[1][case]
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), f"{case}: {key} differs between ranks"


@pytest.mark.parametrize("case", [name for name, (_, pinned) in CASES.items() if pinned])
def test_two_processes_learn_what_one_process_learns_from_both_batches(ranks, case):
    block, _ = CASES[case]
    alone, start = train_bottleneck(block, True, None), initial_state(block)
    learned = [k for k in alone if not torch.equal(alone[k], start[k])]
    assert learned, f"{case}: nothing learned outside autograd, so nothing to compare"
    for key in alone:
        torch.testing.assert_close(ranks[0][case][key], alone[key], rtol=1e-5, atol=1e-6)


def initial_state(block: dict[str, Any]) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return build_component("bottlenecks", block, BuildContext(latent_dim=DIM)).state_dict()


def test_kmeans_over_two_processes_is_lloyd_on_all_rows_from_rank_0_seeds(ranks):
    x = torch.cat([z.permute(0, 2, 3, 1).reshape(-1, DIM) for z in batches()])
    seeds = kmeans(x[0::WORLD], 5, iterations=0, generator=torch.Generator().manual_seed(0))
    centroids = seeds
    for _ in range(4):  # Lloyd's step on every row, with a dense one-hot assignment
        one_hot = torch.nn.functional.one_hot(nearest_code(x, centroids), 5).float()
        counts = one_hot.sum(0)[:, None]
        centroids = torch.where(counts > 0, one_hot.t() @ x / counts.clamp(min=1), centroids)
    assert not torch.equal(centroids, seeds)
    torch.testing.assert_close(ranks[0]["kmeans"]["centroids"], centroids, rtol=1e-5, atol=1e-6)
