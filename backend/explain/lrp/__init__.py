"""LRP written on plain autograd (differentiable twice): rules, composites, canonizers, the hook engine."""
