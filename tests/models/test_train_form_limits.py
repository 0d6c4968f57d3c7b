"""The train form offers exactly the ranges the train job accepts (one table of limits, not two)."""

from __future__ import annotations

import pytest

from backend.errors import InvalidConfig
from backend.models.train_config import validate_config
from backend.services.models import train_fields


def test_every_bounded_train_field_matches_what_validation_accepts():
    bounded = [f for f in train_fields() if f.kind == "int" and f.max is not None and f.name != "devices"]
    assert {f.name for f in bounded} >= {"size", "epochs", "n_train", "n_val", "batch_size"}
    for f in bounded:
        top = int(f.max)
        config = {"batch_size": 1, f.name: top}  # batch 1 splits over any number of devices
        accepted = validate_config(config)
        assert accepted[f.name] == top
        with pytest.raises(InvalidConfig, match=f.name):
            validate_config({f.name: top + 1})
