"""Entropy-coded bitstreams of a trained run's codes: priors, quantization, container, rates."""
