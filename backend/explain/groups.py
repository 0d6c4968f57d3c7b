"""Feature groups of tabular rows: a one-hot encoded attribute is several input columns but one feature.

A grouping is a list of disjoint lists of column indices covering every column (what
`TabularPreprocessing.groups` gives: one entry per source column). Occlusion on rows ablates a group as a
whole; `group_attributions` sums a (B, F) map into (B, G), in plain differentiable ops, so a grouped
map of a `create_graph=True` explanation can sit inside a training loss.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from backend.errors import InvalidConfig

Groups = Sequence[Sequence[int]]


def check_groups(groups: Groups | None, n_features: int) -> list[list[int]]:
    """The grouping as lists of ints (None: every column alone); refuses overlaps, gaps and bad indices."""
    if groups is None:
        return [[i] for i in range(n_features)]
    try:
        out = [[int(i) for i in g] for g in groups]
    except (TypeError, ValueError):
        raise InvalidConfig(
            "groups must be a list of lists of column indices, e.g. [[0], [1, 2, 3]]"
        ) from None
    flat = sorted(i for g in out for i in g)
    if any(not g for g in out) or flat != list(range(n_features)):
        raise InvalidConfig(
            f"groups must split the {n_features} input columns into non-empty, disjoint lists that cover "
            f"each column once; got {out}"
        )
    return out


def group_index(groups: Groups, n_features: int, device=None) -> torch.Tensor:
    """(F,) long: the group of each column (captum's `feature_mask` for one row)."""
    index = torch.empty(n_features, dtype=torch.long, device=device)
    for g, cols in enumerate(check_groups(groups, n_features)):
        index[list(cols)] = g
    return index


def group_attributions(attributions: torch.Tensor, groups: Groups, absolute: bool = False) -> torch.Tensor:
    """(B, F) -> (B, G): the sum of each group's columns (of |a| when `absolute`, an importance)."""
    a = attributions.abs() if absolute else attributions
    index = group_index(groups, a.shape[1], a.device)
    out = torch.zeros(a.shape[0], int(index.max()) + 1, dtype=a.dtype, device=a.device)
    return out.index_add(1, index, a)
