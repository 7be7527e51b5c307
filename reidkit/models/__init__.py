"""Backbones, pooling, BN-neck and memory banks."""
