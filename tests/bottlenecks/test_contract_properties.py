"""The bottleneck contract for any batch, latent size and configuration (hypothesis): after a
training batch, in eval mode, decode(encode(z)) equals forward(z).quantized, codes lie in the
alphabets of code_spec, and every shape follows from z's."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from laser_core.assembly.build import build_component, list_components
from laser_core.plugin.contracts import BuildContext

SETTINGS = settings(max_examples=20, deadline=None)
small = st.integers


@st.composite
def codebook(draw, name: str) -> dict[str, Any]:
    params = {
        "name": name,
        "update": draw(st.sampled_from(["ema", "gradient"])),
        "kmeans_init": draw(st.booleans()),
    }
    if name == "vq":
        return params | {"codebook_size": draw(small(2, 16)), "normalize": draw(st.booleans())}
    levels = draw(small(1, 3))
    return params | {
        "levels": levels,
        "codebook_size": draw(small(2, 8)),
        "shared_codebook": draw(st.booleans()),
    }


@st.composite
def dictionary(draw, name: str, dim: int, patch: int) -> dict[str, Any]:
    atoms = draw(small(1, 12))
    params = {
        "name": name,
        "atoms": atoms,
        "sparsity": draw(small(1, min(atoms, dim * patch**2, 4))),
        "patch_size": patch,
    }
    if name == "omp":
        params["update"] = draw(st.sampled_from(["gradient", "online", "ksvd"]))
    return params


@st.composite
def bottleneck_case(draw, name: str) -> tuple[dict[str, Any], torch.Size]:
    """A valid block for bottleneck ``name`` and a latent shape (batch, dim, height, width)."""
    dim, patch = draw(small(1, 6)), 1
    if name in ("vq", "rq"):
        block = draw(codebook(name))
    elif name == "gumbel":
        block = {"name": name, "codebook_size": draw(small(2, 16))}
    elif name in ("omp", "ksvd"):
        patch = draw(small(1, 2))
        block = draw(dictionary(name, dim, patch))
    else:  # a bottleneck added since: its defaults, on latents wide enough for most
        block, dim = {"name": name}, 8
    height, width = (patch * draw(small(1, 3)) for _ in range(2))
    return block, torch.Size((draw(small(1, 3)), dim, height, width))


NAMES = sorted(component.name for component in list_components("bottlenecks"))


def test_every_built_in_bottleneck_is_covered():
    assert {"vq", "rq", "gumbel", "gaussian", "omp", "ksvd"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data(), seed=small(0, 2**16))
def test_eval_decode_of_encode_is_the_quantized_output_and_codes_fit_code_spec(name, data, seed):
    block, shape = data.draw(bottleneck_case(name))
    torch.manual_seed(seed)
    bottleneck = build_component("bottlenecks", block, BuildContext(latent_dim=shape[1]))
    bottleneck.train()
    bottleneck(torch.randn(shape))  # a training batch first: k-means, EMA, first atoms
    bottleneck.after_optimizer_step()

    z = torch.randn(shape)
    bottleneck.eval()
    with torch.no_grad():
        out = bottleneck(z)
        codes = bottleneck.encode(z)
        decoded = bottleneck.decode(codes)
    assert out.quantized.shape == z.shape and decoded.shape == z.shape
    torch.testing.assert_close(decoded, out.quantized, rtol=1e-4, atol=1e-5)

    spec = bottleneck.code_spec()
    patch = block.get("patch_size", 1)
    positions = (shape[0], shape[2] // patch, shape[3] // patch)
    assert (codes.values is not None) == spec.has_values
    if spec.alphabet_sizes:
        depth = len(spec.alphabet_sizes)
        assert codes.indices.shape == (*positions, depth)
        assert codes.indices.dtype == torch.long
        limits = torch.tensor(spec.alphabet_sizes)
        assert ((codes.indices >= 0) & (codes.indices < limits)).all()
        assert torch.equal(out.codes.indices, codes.indices)
    if codes.values is not None:
        assert codes.values.shape[:3] == positions and codes.values.dtype == torch.float32
