"""The transformer prior: causal, normalised, coded exactly as it claims, trainable."""

from __future__ import annotations

from laser_core.testing import check_component

TINY = {"dim": 16, "layers": 1, "heads": 2, "dropout": 0.0}


def test_transformer_prior_conforms():
    check_component("priors", "transformer", TINY)
