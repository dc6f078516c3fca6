"""Numerical kernels shared by plugins: nearest-code search and batched OMP (torch and Triton),
dictionary updates, counted categoricals, probabilities as entropy-coder frequencies."""

from laser_core.ops.atoms import reinitialise_atoms, replacement_directions
from laser_core.ops.counts import count_probabilities, symbol_counts
from laser_core.ops.dispatch import Backend
from laser_core.ops.frequencies import PRECISION, frequency_bits, to_frequencies
from laser_core.ops.kmeans import cluster_statistics, kmeans
from laser_core.ops.ksvd import KSVDResult, ksvd, ksvd_update
from laser_core.ops.nearest_code import nearest_code
from laser_core.ops.omp import batch_omp, reconstruct
from laser_core.ops.online_dictionary import code_statistics, online_dictionary_update

__all__ = [
    "PRECISION",
    "Backend",
    "KSVDResult",
    "batch_omp",
    "cluster_statistics",
    "code_statistics",
    "count_probabilities",
    "frequency_bits",
    "kmeans",
    "ksvd",
    "ksvd_update",
    "nearest_code",
    "online_dictionary_update",
    "reconstruct",
    "reinitialise_atoms",
    "replacement_directions",
    "symbol_counts",
    "to_frequencies",
]
