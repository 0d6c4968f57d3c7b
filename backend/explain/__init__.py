"""Every explanation method behind one batched, differentiable API (see docs/ARCHITECTURE.md)."""

from backend.explain.api import Explanation, explain
from backend.explain.registry import METHODS, MethodSpec, get_method

__all__ = ["METHODS", "Explanation", "MethodSpec", "explain", "get_method"]
