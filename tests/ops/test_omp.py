"""Batch-OMP: scikit-learn's supports and coefficients, exact recovery and least squares, fp32
codes from half-precision inputs, early stops, and the Triton kernel under the interpreter."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from sklearn.linear_model import orthogonal_mp_gram

from laser_core.ops import batch_omp, omp_cpu, reconstruct


def unit_dictionary(dim: int, atoms: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    dictionary = torch.randn(dim, atoms, generator=generator)
    return dictionary / dictionary.norm(dim=0)


def sparse_signals(dictionary: torch.Tensor, count: int, sparsity: int, seed: int = 1):
    """Signals (count, M) made of ``sparsity`` random atoms each, and their supports."""
    generator = torch.Generator().manual_seed(seed)
    supports = torch.rand(count, dictionary.shape[1], generator=generator).argsort(1)
    supports = supports[:, :sparsity]
    magnitudes = 1 + torch.rand(count, sparsity, generator=generator)
    signs = torch.randint(0, 2, (count, sparsity), generator=generator) * 2 - 1
    signals = torch.einsum("ns,nsm->nm", magnitudes * signs, dictionary.t()[supports])
    return signals, supports


def test_omp_matches_sklearn_on_random_dictionary():
    dictionary = unit_dictionary(64, 512)
    signals = torch.randn(2000, 64, generator=torch.Generator().manual_seed(1))
    codes = batch_omp(signals, dictionary, sparsity=8)

    gram = (dictionary.t() @ dictionary).double().numpy()
    reference = orthogonal_mp_gram(
        gram, (dictionary.t().double() @ signals.double().t()).numpy(), n_nonzero_coefs=8
    )
    reference = torch.from_numpy(np.ascontiguousarray(reference.T))  # (N, K)

    same = [
        set(codes.indices[n].tolist()) == set(reference[n].nonzero().flatten().tolist())
        for n in range(len(signals))
    ]
    assert sum(same) >= 0.999 * len(signals)
    agreeing = torch.tensor(same)
    ours = codes.values[agreeing].double()
    theirs = reference[agreeing].gather(1, codes.indices[agreeing])
    relative = (ours - theirs).norm(dim=1) / theirs.norm(dim=1)
    assert relative.max() < 1e-4


def test_omp_coefficients_are_least_squares_over_their_support():
    dictionary = unit_dictionary(32, 128)
    signals = torch.randn(50, 32, generator=torch.Generator().manual_seed(2))
    codes = batch_omp(signals, dictionary, sparsity=6)
    for n in range(len(signals)):
        atoms = dictionary[:, codes.indices[n]].double()
        expected = torch.linalg.lstsq(atoms, signals[n].double().unsqueeze(1)).solution.squeeze(1)
        torch.testing.assert_close(codes.values[n].double(), expected, rtol=1e-4, atol=1e-5)


def test_omp_recovers_exact_sparse_signals():
    dictionary = unit_dictionary(128, 256)  # incoherent enough for greedy recovery
    signals, supports = sparse_signals(dictionary, 500, sparsity=5)
    codes = batch_omp(signals, dictionary, sparsity=5)
    assert torch.equal(codes.indices.sort(1).values, supports.sort(1).values)
    error = (reconstruct(codes, dictionary) - signals).norm(dim=1) / signals.norm(dim=1)
    assert error.max() < 1e-5


@pytest.mark.parametrize("kind", ["identity", "orthonormal"])
def test_omp_on_orthonormal_dictionary_keeps_the_largest_coordinates(kind: str):
    dim = 16
    generator = torch.Generator().manual_seed(3)
    if kind == "identity":
        dictionary = torch.eye(dim)
    else:
        dictionary = torch.linalg.qr(torch.randn(dim, dim, generator=generator)).Q
    signals = torch.randn(200, dim, generator=generator)
    codes = batch_omp(signals, dictionary, sparsity=4)
    coordinates = signals @ dictionary  # exact least squares over any support
    largest = coordinates.abs().topk(4, dim=1).indices
    assert torch.equal(codes.indices, largest)
    torch.testing.assert_close(codes.values, coordinates.gather(1, largest), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", ["auto", "torch"])  # the C loop and the torch path
def test_omp_takes_the_first_of_atoms_tied_in_correlation(backend: str):
    # Atom 8 repeats atom 2 and atom 9 is atom 5 negated: exact ties, which argmax breaks
    # towards the first column, as scikit-learn does; the codes are the identity's.
    identity = torch.eye(8)
    dictionary = torch.cat([identity, identity[:, 2:3], -identity[:, 5:6]], 1)
    signals = torch.randn(300, 8, generator=torch.Generator().manual_seed(9))
    codes = batch_omp(signals, dictionary, sparsity=4, backend=backend)
    expected = batch_omp(signals, identity, sparsity=4, backend=backend)
    assert torch.equal(codes.indices, expected.indices)
    assert torch.equal(codes.values, expected.values)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_omp_half_precision_inputs_give_fp32_codes_with_the_same_supports(dtype: torch.dtype):
    dictionary = unit_dictionary(64, 512).to(dtype)
    signals = torch.randn(300, 64, generator=torch.Generator().manual_seed(4)).to(dtype)
    codes = batch_omp(signals, dictionary, sparsity=8)
    expected = batch_omp(signals.float(), dictionary.float(), sparsity=8)
    assert codes.values.dtype == torch.float32
    assert torch.isfinite(codes.values).all()
    assert torch.equal(codes.indices, expected.indices)
    torch.testing.assert_close(codes.values, expected.values)


def test_omp_under_autocast_computes_in_fp32():
    dictionary = unit_dictionary(32, 64)
    signals = torch.randn(100, 32, generator=torch.Generator().manual_seed(5))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        codes = batch_omp(signals, dictionary, sparsity=4)
    expected = batch_omp(signals, dictionary, sparsity=4)
    assert codes.values.dtype == torch.float32
    assert torch.equal(codes.indices, expected.indices)
    assert torch.equal(codes.values, expected.values)


def test_omp_never_selects_an_atom_twice():
    dictionary = unit_dictionary(8, 12)  # few atoms, sparsity = dimension
    signals = torch.randn(400, 8, generator=torch.Generator().manual_seed(6))
    codes = batch_omp(signals, dictionary, sparsity=8)
    for row in codes.indices:
        assert len(set(row.tolist())) == 8
    torch.testing.assert_close(reconstruct(codes, dictionary), signals, atol=1e-4, rtol=1e-4)


def test_omp_tolerance_stops_early_and_pads_with_index_zero_value_zero():
    dictionary = unit_dictionary(32, 128)
    signals = torch.randn(300, 32, generator=torch.Generator().manual_seed(7))
    tolerance = 0.3 * signals.square().sum(1).mean().item()
    codes = batch_omp(signals, dictionary, sparsity=10, tolerance=tolerance)
    full = batch_omp(signals, dictionary, sparsity=10)
    residual = (signals - reconstruct(codes, dictionary)).square().sum(1)
    used = (codes.values != 0).sum(1)
    assert (used < 10).any() and (used > 0).all()
    stopped = used < 10
    assert (residual[stopped] <= tolerance * (1 + 1e-5)).all()
    # Stopping only truncates the greedy path: the used slots are the first atoms picked.
    for n in range(len(signals)):
        count = int(used[n])
        assert torch.equal(codes.indices[n, :count], full.indices[n, :count])
        assert (codes.indices[n, count:] == 0).all() and (codes.values[n, count:] == 0).all()


@pytest.mark.parametrize("backend", ["auto", "torch"])  # the C loop and the torch path
def test_omp_leaves_zero_signals_and_exhausted_residuals_uncoded(backend: str):
    dictionary = unit_dictionary(16, 32)
    signals, _ = sparse_signals(dictionary, 20, sparsity=2)
    signals[0] = 0
    codes = batch_omp(signals, dictionary, sparsity=5, backend=backend)
    assert (codes.indices[0] == 0).all() and (codes.values[0] == 0).all()
    assert ((codes.values[1:] != 0).sum(1) == 2).all()


def test_omp_leaves_signals_already_within_tolerance_uncoded():
    dictionary = unit_dictionary(16, 32)
    signals, _ = sparse_signals(dictionary, 20, sparsity=2)
    signals[:5] *= 0.01  # squared norms below 1e-3
    codes = batch_omp(signals, dictionary, sparsity=4, tolerance=0.01)
    assert (codes.values[:5] == 0).all() and (codes.indices[:5] == 0).all()
    assert (codes.values[5:] != 0).any(1).all()


@pytest.mark.parametrize(
    ("signals", "dictionary"), [((4, 8), (7, 16)), ((8,), (8, 16)), ((4, 8), (8,))]
)
def test_omp_rejects_signals_and_dictionary_of_mismatched_shapes(signals, dictionary):
    with pytest.raises(ValueError, match=r"signals \(N, M\) and dictionary \(M, K\); got signals"):
        batch_omp(torch.randn(signals), torch.randn(dictionary), sparsity=1)


def test_omp_rejects_a_negative_tolerance_and_takes_zero_as_none():
    signals, dictionary = torch.randn(4, 8), unit_dictionary(8, 16)
    with pytest.raises(ValueError, match=r"tolerance=-0\.1 must be a non-negative squared norm"):
        batch_omp(signals, dictionary, sparsity=2, tolerance=-0.1)
    zero = batch_omp(signals, dictionary, sparsity=2, tolerance=0.0)
    assert torch.equal(zero.indices, batch_omp(signals, dictionary, sparsity=2).indices)


def test_reconstruct_computes_in_the_dtype_of_the_dictionary():
    dictionary = unit_dictionary(8, 16)
    codes = batch_omp(torch.randn(5, 8), dictionary, sparsity=3)
    signals = reconstruct(codes, dictionary.bfloat16())
    assert signals.dtype == torch.bfloat16
    torch.testing.assert_close(
        signals.float(), reconstruct(codes, dictionary), atol=0.05, rtol=0.02
    )


def test_omp_rejects_sparsity_above_signal_dimension():
    with pytest.raises(ValueError, match="sparsity=9 must be between 1 and min"):
        batch_omp(torch.randn(4, 8), unit_dictionary(8, 32), sparsity=9)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_omp_rejects_non_finite_signals(value: str):
    signals = torch.randn(4, 8)
    signals[1, 2] = float(value)
    with pytest.raises(ValueError, match=r"^batch_omp: signals contain NaN or infinite values$"):
        batch_omp(signals, unit_dictionary(8, 32), sparsity=2)


def test_omp_codes_no_signals():
    codes = batch_omp(torch.zeros(0, 8), unit_dictionary(8, 16), sparsity=2)
    assert codes.indices.shape == codes.values.shape == (0, 2)


@pytest.mark.parametrize("backend", ["auto", "torch"])  # the C loop and the torch path
def test_omp_chunks_give_the_same_codes(backend: str):
    dictionary = unit_dictionary(16, 64)
    signals = torch.randn(100, 16, generator=torch.Generator().manual_seed(8))
    threads = torch.get_num_threads()
    whole = batch_omp(signals, dictionary, sparsity=4, backend=backend)
    chunked = batch_omp(signals, dictionary, sparsity=4, backend=backend, chunk_size=7)
    assert torch.get_num_threads() == threads  # chunk threads leave torch's setting alone
    assert torch.equal(whole.indices, chunked.indices)
    torch.testing.assert_close(whole.values, chunked.values)


@pytest.mark.parametrize("tolerance", [None, 0.0, 4.0])
def test_omp_cpu_kernel_gives_the_torch_paths_codes(tolerance: float | None):
    # Zero signals, exact ties (atom 40 repeats atom 3), an exactly sparse signal that stops
    # early, and enough signals for several blocks on each thread.
    dictionary = unit_dictionary(24, 48)
    dictionary = torch.cat([dictionary[:, :40], dictionary[:, 3:4], dictionary[:, 41:]], 1)
    signals = torch.randn(600, 24, generator=torch.Generator().manual_seed(10))
    signals[5] = 0
    signals[6] = 2 * dictionary[:, 7] - dictionary[:, 30]
    kernel = batch_omp(signals, dictionary, 9, tolerance, chunk_size=64)
    reference = batch_omp(signals, dictionary, 9, tolerance, backend="torch")
    assert torch.equal(kernel.indices, reference.indices)
    torch.testing.assert_close(kernel.values, reference.values, rtol=1e-4, atol=1e-5)
    assert (kernel.values[5] == 0).all() and (kernel.values[6, 2:] == 0).all()


def test_omp_without_a_c_compiler_warns_and_codes_with_the_torch_path(tmp_path, monkeypatch):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(omp_cpu, "_compiled", omp_cpu._compiled.__wrapped__)  # fresh per call
    dictionary = unit_dictionary(16, 32)
    signals = torch.randn(20, 16, generator=torch.Generator().manual_seed(11))
    with pytest.warns(RuntimeWarning, match="could not build the CPU kernel.*set \\$CC"):
        codes = batch_omp(signals, dictionary, sparsity=3)
    reference = batch_omp(signals, dictionary, sparsity=3, backend="torch")
    assert torch.equal(codes.indices, reference.indices)


def test_omp_triton_backend_needs_cuda_or_the_interpreter():
    if os.environ.get("TRITON_INTERPRET") == "1":
        pytest.skip("the interpreter runs the Triton backend on the CPU")
    with pytest.raises(ValueError, match="needs CUDA tensors"):
        batch_omp(torch.randn(4, 8), unit_dictionary(8, 16), sparsity=2, backend="triton")


# -- the Triton kernel, run by the Triton interpreter in a fresh process -----------------------

INTERPRETER_CASES = [(40, 16, 64, 4, None), (37, 3, 16, 3, None), (30, 24, 100, 6, 5.0)]


def _compare_triton_with_torch() -> dict:
    """Runs with TRITON_INTERPRET=1 set before triton is imported (see __main__ below)."""
    from laser_core.plugin.contracts import BuildContext
    from laser_core.plugin.registry import default_registry

    results = {"cases": []}
    for count, dim, atoms, sparsity, tolerance in INTERPRETER_CASES:
        dictionary = unit_dictionary(dim, atoms)
        signals = torch.randn(count, dim, generator=torch.Generator().manual_seed(9))
        signals[3] = 0
        reference = batch_omp(signals, dictionary, sparsity, tolerance, backend="torch")
        kernel = batch_omp(signals.bfloat16(), dictionary, sparsity, tolerance, backend="triton")
        upcast = batch_omp(
            signals.bfloat16().float(), dictionary, sparsity, tolerance, backend="torch"
        )
        triton_codes = batch_omp(signals, dictionary, sparsity, tolerance, backend="triton")
        results["cases"].append(
            {
                "same_indices": torch.equal(reference.indices, triton_codes.indices),
                "value_error": (reference.values - triton_codes.values).abs().max().item(),
                "bf16_same_indices": torch.equal(kernel.indices, upcast.indices),
                "bf16_dtype": str(kernel.values.dtype),
            }
        )
    # The bottleneck's gradients with Triton codes equal those with torch codes.
    component = default_registry().get("bottlenecks", "omp")
    grads = {}
    for backend in ("torch", "triton"):
        torch.manual_seed(0)
        config = component.config(atoms=24, sparsity=3, backend=backend)
        bottleneck = component.factory(config, BuildContext(latent_dim=8))
        z = torch.randn(2, 8, 4, 4, requires_grad=True)
        out = bottleneck(z)
        (out.quantized.square().sum() + out.loss).backward()
        grads[backend] = (z.grad, bottleneck.dictionary.grad)
    results["gradient_error"] = max(
        (a - b).abs().max().item() for a, b in zip(grads["torch"], grads["triton"], strict=True)
    )
    return results


@pytest.mark.slow
def test_triton_kernel_matches_torch_path_in_interpreter():
    from tests.helpers import run_in_triton_interpreter  # not at the top: __file__ runs alone

    results = run_in_triton_interpreter(__file__)
    for case, expected in zip(results["cases"], INTERPRETER_CASES, strict=True):
        assert case["same_indices"], expected
        assert case["value_error"] < 1e-4, expected
        assert case["bf16_same_indices"] and case["bf16_dtype"] == "torch.float32", expected
    assert results["gradient_error"] < 1e-5  # the codes' values differ by rounding only


if __name__ == "__main__":
    print(json.dumps(_compare_triton_with_torch()))
