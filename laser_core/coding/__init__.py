"""Entropy-coded bitstreams of a trained run's codes: priors, quantization, container, rates."""

DEFAULT_BITS = 8
"""Bits per quantized code value of the priors ``laser priors`` and ``compress`` count."""
DEFAULT_MAX_IMAGES = 4096
"""Training images the priors are counted on, at most."""
