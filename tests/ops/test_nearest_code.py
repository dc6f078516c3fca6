"""Nearest-code search: the brute-force nearest code in blocks and threads, the lowest index
among exact ties, fp32 search of half-precision inputs, and the Triton kernel under the
interpreter, alone and inside the vq bottleneck."""

from __future__ import annotations

import json
import os
import warnings

import pytest
import torch

from laser_core.ops import nearest_code
from laser_core.ops.nearest_code import ARGMIN_GROUP, first_argmin


def vectors_and_codebook(count: int, dim: int, size: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(count, dim, generator=generator), torch.randn(size, dim, generator=generator)


def lattice_codebook(size: int, dim: int, seed: int = 0) -> torch.Tensor:
    """Distinct codes (size, dim) of small integers, and so that vectors within 1/4 of a code
    per coordinate in steps of 1/8 have exactly computed distances in fp32 in any summation
    order: equal codes then tie exactly, and no other code comes within rounding."""
    generator = torch.Generator().manual_seed(seed)
    codebook = torch.randint(-4, 5, (size, dim), generator=generator).float()
    codebook[:, 0] = torch.arange(size)
    return codebook


def near(code: torch.Tensor, count: int, seed: int = 1) -> torch.Tensor:
    """``count`` vectors within 1/4 of ``code`` (dim,) per coordinate, in steps of 1/8."""
    generator = torch.Generator().manual_seed(seed)
    return code + torch.randint(-2, 3, (count, len(code)), generator=generator) / 8


def brute_force_distances(vectors: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Exact squared distances (N, K) in float64, the dense reference."""
    return torch.cdist(vectors.double(), codebook.double()).square()


def assert_nearest(
    indices: torch.Tensor, vectors: torch.Tensor, codebook: torch.Tensor, tolerance: float = 1e-4
) -> None:
    """Each index is the brute-force argmin, except that where two codes lie within rounding of
    each other either may be chosen, as long as its distance is the minimum (up to
    ``tolerance`` relative)."""
    distances = brute_force_distances(vectors, codebook)
    best, second = distances.topk(2, dim=1, largest=False).values.unbind(1)
    chosen = distances.gather(1, indices[:, None]).squeeze(1)
    assert indices.dtype == torch.long
    assert (chosen - best <= tolerance * (1 + best)).all()
    clear = second - best > 10 * tolerance * (1 + best)
    assert torch.equal(indices[clear], distances.argmin(1)[clear])


@pytest.mark.parametrize("chunk_size", [None, 7, 1000])
def test_nearest_code_matches_brute_force_across_blocks(chunk_size):
    vectors, codebook = vectors_and_codebook(3000, 16, 512)
    indices = nearest_code(vectors, codebook, chunk_size=chunk_size)
    assert_nearest(indices, vectors, codebook)


@pytest.mark.parametrize("size", [3, 64, 100, 1024])
def test_nearest_code_matches_brute_force_for_any_codebook_size(size):
    vectors, codebook = vectors_and_codebook(2000, 8, size)
    assert_nearest(nearest_code(vectors, codebook), vectors, codebook)


def test_nearest_code_threads_leave_torch_settings_alone():
    vectors, codebook = vectors_and_codebook(5000, 8, 256)
    threads = torch.get_num_threads()
    one_block = nearest_code(vectors, codebook, chunk_size=len(vectors))
    many_blocks = nearest_code(vectors, codebook, chunk_size=100)
    assert torch.get_num_threads() == threads
    assert torch.equal(one_block, many_blocks)


@pytest.mark.parametrize("size", [100, 512])
def test_nearest_code_breaks_exact_ties_toward_the_lowest_index(size):
    codebook = lattice_codebook(size, 8)
    codebook[size - 3], codebook[71] = codebook[5], codebook[70]  # across argmin groups, inside
    vectors = torch.cat([near(codebook[5], 100), near(codebook[70], 100)])
    indices = nearest_code(vectors, codebook)
    assert (indices[:100] == 5).all() and (indices[100:] == 70).all()


@pytest.mark.parametrize("size", [16, ARGMIN_GROUP, 100, 512, 2048])
def test_first_argmin_equals_torch_argmin_with_many_ties(size):
    generator = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 5, (300, size), generator=generator).float()
    assert torch.equal(first_argmin(scores), scores.argmin(1))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_inputs_are_searched_in_fp32(dtype):
    vectors, codebook = vectors_and_codebook(2000, 32, 256)
    vectors, codebook = vectors.to(dtype), codebook.to(dtype)
    indices = nearest_code(vectors, codebook)
    assert torch.equal(indices, nearest_code(vectors.float(), codebook.float()))
    assert_nearest(indices, vectors.float(), codebook.float())


def test_nearest_code_under_bf16_autocast_computes_in_fp32():
    # Codes a bf16 distance cannot tell apart: 1e-3 apart at distance about 1.
    generator = torch.Generator().manual_seed(0)
    codebook = torch.randn(64, 16, generator=generator)
    vectors = codebook[torch.arange(64).repeat(10)] + 0.3 * torch.randn(640, 16)
    codebook = torch.cat([codebook, codebook + 1e-3])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        indices = nearest_code(vectors, codebook)
    assert torch.equal(indices, nearest_code(vectors, codebook))
    assert_nearest(indices, vectors, codebook, tolerance=1e-5)


def test_nearest_code_of_no_vectors_is_empty():
    indices = nearest_code(torch.zeros(0, 4), torch.randn(8, 4))
    assert indices.shape == (0,) and indices.dtype == torch.long


@pytest.mark.parametrize(
    ("vectors", "codebook"), [((4, 8), (16, 7)), ((8,), (16, 8)), ((4, 8), (8,))]
)
def test_nearest_code_rejects_mismatched_dimensions(vectors, codebook):
    with pytest.raises(ValueError, match=r"vectors \(N, D\) and codebook \(K, D\)"):
        nearest_code(torch.randn(vectors), torch.randn(codebook))


def test_nearest_code_rejects_an_empty_codebook_and_searches_a_single_code():
    with pytest.raises(ValueError, match=r"^nearest_code: the codebook has no codes$"):
        nearest_code(torch.randn(4, 8), torch.zeros(0, 8))
    assert nearest_code(torch.randn(4, 8), torch.randn(1, 8)).tolist() == [0, 0, 0, 0]


def test_nearest_code_on_the_cpu_runs_the_torch_path_for_auto_and_rejects_unknown_backends():
    vectors, codebook = vectors_and_codebook(50, 8, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither tries (and falls back from) the Triton kernel
        auto = nearest_code(vectors, codebook)
        assert torch.equal(nearest_code(vectors, codebook, backend="torch"), auto)
    with pytest.raises(ValueError, match="unknown backend 'cuda'; use 'auto', 'torch' or 'triton'"):
        nearest_code(vectors, codebook, backend="cuda")


def test_nearest_code_triton_backend_needs_cuda_or_the_interpreter():
    if os.environ.get("TRITON_INTERPRET") == "1":
        pytest.skip("the interpreter runs the Triton backend on the CPU")
    message = (
        r"^nearest_code: backend='triton' needs CUDA tensors \(or TRITON_INTERPRET=1 to run the "
        r"kernel on the CPU for testing\); use backend='auto' or 'torch' here$"
    )
    with pytest.raises(ValueError, match=message):
        nearest_code(torch.randn(4, 8), torch.randn(16, 8), backend="triton")


# -- the Triton kernel, run by the Triton interpreter in a fresh process -----------------------

INTERPRETER_CASES = [(37, 3, 16), (100, 64, 512), (50, 130, 100), (70, 16, 5)]
"""(vectors, dim, codes): ragged tiles, one feature tile and 8 code tiles, 3 feature tiles,
fewer codes than one tile."""


def _compare_triton_with_brute_force() -> dict:
    """Runs with TRITON_INTERPRET=1 set before triton is imported (see __main__ below)."""
    from laser_core.plugin.contracts import BuildContext
    from laser_core.plugin.registry import default_registry

    results = {"cases": []}
    for count, dim, size in INTERPRETER_CASES:
        vectors, codebook = vectors_and_codebook(count, dim, size)
        reference = brute_force_distances(vectors, codebook).argmin(1)
        half = vectors.bfloat16()
        results["cases"].append(
            {
                "same_indices": torch.equal(
                    nearest_code(vectors, codebook, backend="triton"), reference
                ),
                "bf16_same_indices": torch.equal(
                    nearest_code(half, codebook, backend="triton"),
                    brute_force_distances(half.float(), codebook).argmin(1),
                ),
            }
        )
    # Exact ties across code tiles go to the lowest index.
    codebook = lattice_codebook(200, 16)
    codebook[150] = codebook[20]
    vectors = near(codebook[20], 40)
    results["ties_to_lowest"] = bool(
        (nearest_code(vectors, codebook, backend="triton") == 20).all()
    )
    # The vq bottleneck learns the same with either backend.
    component = default_registry().get("bottlenecks", "vq")
    grads = {}
    for backend in ("torch", "triton"):
        torch.manual_seed(0)
        config = component.config(
            codebook_size=64, update="gradient", kmeans_init=False, backend=backend
        )
        bottleneck = component.factory(config, BuildContext(latent_dim=8)).train()
        z = torch.randn(2, 8, 8, 8, requires_grad=True)
        out = bottleneck(z)
        (out.quantized.square().sum() + out.loss).backward()
        grads[backend] = (out.codes.indices, z.grad, bottleneck.codebook.weight.grad)
    results["vq_same_codes"] = torch.equal(grads["torch"][0], grads["triton"][0])
    results["vq_gradient_error"] = max(
        (a - b).abs().max().item()
        for a, b in zip(grads["torch"][1:], grads["triton"][1:], strict=True)
    )
    return results


@pytest.mark.slow
def test_triton_kernel_matches_brute_force_in_interpreter():
    from tests.helpers import run_in_triton_interpreter  # not at the top: __file__ runs alone

    results = run_in_triton_interpreter(__file__)
    for case, expected in zip(results["cases"], INTERPRETER_CASES, strict=True):
        assert case["same_indices"] and case["bf16_same_indices"], expected
    assert results["ties_to_lowest"]
    assert results["vq_same_codes"] and results["vq_gradient_error"] == 0


if __name__ == "__main__":
    print(json.dumps(_compare_triton_with_brute_force()))
