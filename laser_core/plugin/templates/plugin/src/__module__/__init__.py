"""LASER plugin package for the '__name__' bottleneck."""
