"""Robust saliency with distribution-preserving decoys (paper 003): generation, Z score, metrics, attacks."""
