"""FoolConfig's limits live on its fields (backend.limits): every number has a range, and a value
outside it is refused with a message that names the setting and the range."""

from __future__ import annotations

import dataclasses

import pytest

from backend.errors import InvalidConfig
from backend.fool.config import FoolConfig
from backend.limits import Limits, limits_of

BASE = {"model": "m", "dataset": {"kind": "shapes", "n": 16, "seed": 0}}
NUMERIC = [
    f.name
    for f in dataclasses.fields(FoolConfig)
    if ("int" in str(f.type) or "float" in str(f.type)) and "bool" not in str(f.type)
]


def test_every_numeric_setting_declares_its_limits_and_a_help_or_label():
    assert len(NUMERIC) >= 14  # lam, lr, batch_size, steps, epochs, val_*, momentum, seed, ...
    limits = limits_of(FoolConfig)
    for name in NUMERIC:
        assert limits[name].numeric and limits[name].min is not None, name
        assert limits[name].help or limits[name].label or name in ("batch_size", "epochs", "seed"), name


def _below(limits: Limits) -> float:
    return limits.min if limits.min_exclusive else limits.min - 1


@pytest.mark.parametrize("name", NUMERIC)
def test_a_value_below_the_range_names_the_setting_and_the_range(name):
    limits = limits_of(FoolConfig)[name]
    with pytest.raises(InvalidConfig) as err:
        FoolConfig.from_dict({**BASE, name: _below(limits)}).validate()
    message = str(err.value)
    assert (limits.label or name) in message and limits.describe() in message, message


def test_messages_read_as_before_and_in_range_values_pass():
    def refused(**change) -> str:
        with pytest.raises(InvalidConfig) as err:
            FoolConfig.from_dict({**BASE, **change}).validate()
        return str(err.value)

    assert refused(val_fraction=1.0) == "val_fraction must be in (0, 1), not 1.0."
    assert refused(batch_size=2.5) == "batch_size must be a whole number >= 1, not 2.5."
    assert refused(lr="fast") == "lr (the learning rate) must be a number > 0, not 'fast'."
    assert refused(optimizer="rmsprop").startswith("optimizer must be one of adam, adamw, sgd")
    assert refused(attack="teleport").startswith("Unknown attack 'teleport'; choose one of location")
    ok = FoolConfig.from_dict({**BASE, "steps": None, "grad_clip": None, "momentum": 1.0, "val_every": 0})
    assert ok.validate() is ok
