"""The two thresholds of Batch-OMP, shared by its torch and Triton paths so both stop alike."""

NEGLIGIBLE_CORRELATION = 1e-5
"""A residual whose largest correlation is below this fraction of the signal norm is treated
as fully represented: any further atom would fit rounding noise."""

DEGENERATE_PIVOT = 1e-6
"""An atom whose squared distance to the span of the support is below this fraction of its
squared norm would make the Cholesky factor singular; its slot is left unused."""
