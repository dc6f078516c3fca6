"""Pretrained autoencoders from other libraries turned into LASER run directories."""
