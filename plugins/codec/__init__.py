"""Learned image codecs after Ballé et al.: GDN transforms and entropy models trained for
rate, coding whole images (docs/compression.md)."""
