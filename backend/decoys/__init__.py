"""Robust saliency with distribution-preserving decoys (Decoys): generation, Z score, metrics, attacks."""
