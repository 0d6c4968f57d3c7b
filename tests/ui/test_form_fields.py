"""Form fields declared by the registries: each value is checked by its field, every default passes its
own field, and FoolConfig's validation spells every attack / interpreter setting out (one normal form)."""

from __future__ import annotations

import pytest

from backend.errors import InvalidConfig
from backend.explain import METHODS
from backend.fool.config import FoolConfig
from backend.fool.fields import config_fields
from backend.fool.losses import FOOLING_ATTACKS
from backend.forms import FieldSpec


def test_a_field_coerces_and_refuses_with_its_name():
    lr = FieldSpec("lr", "float", 1e-6, label="Learning rate", min=0.0)
    assert lr.coerce("2e-3") == 2e-3
    with pytest.raises(InvalidConfig, match="Learning rate must be >= 0.0"):
        lr.coerce(-1)
    with pytest.raises(InvalidConfig, match="Learning rate needs a value"):
        lr.coerce("")
    steps = FieldSpec("steps", "int", None, optional=True, min=1)
    assert steps.coerce("") is None and steps.coerce(3.0) == 3
    with pytest.raises(InvalidConfig, match="whole number"):
        steps.coerce(2.5)
    choice = FieldSpec("composite", "choice", "a", choices=("a", "b"))
    with pytest.raises(InvalidConfig, match="not one of a, b"):
        choice.coerce("c")
    assert FieldSpec("v", "json").coerce('{"kind": "shapes"}') == {"kind": "shapes"}
    assert FieldSpec("s", "list").coerce("0, 0.01; 0.02") == [0.0, 0.01, 0.02]
    with pytest.raises(ValueError, match="declares no choices"):
        FieldSpec("x", "choice")


def test_every_registry_default_passes_its_own_field():
    every = [*config_fields()]
    every += [f for a in FOOLING_ATTACKS.values() for f in a.form]
    every += [f for m in METHODS.values() for f in m.fields()]
    for f in every:
        assert f.coerce(f.default) == f.default, f.name
    for attack in FOOLING_ATTACKS.values():  # the settings an attack takes are the fields it declares
        assert set(attack.defaults) <= {f.name for f in attack.form}, attack.name
    lrp = {f.name: f for f in METHODS["lrp_t"].fields()}
    assert lrp["layer"].kind == "layer" and lrp["composite"].choices[0] == "epsilon_alpha1beta0"


def test_validation_spells_out_attack_and_interpreter_settings():
    cfg = FoolConfig.from_dict(
        {
            "model": "m",
            "dataset": {"kind": "shapes", "n": 8},
            "attack": "active",
            "interpreter": "lrp_t",
            "attack_params": {"c2": 2, "pair_images_only": True},
        }
    ).validate()
    assert cfg.attack_params == {"c1": 0, "c2": 2, "images": "labelled"}
    assert cfg.interpreter_params["composite"] == "epsilon_alpha1beta0"
    assert FoolConfig.from_dict(cfg.to_dict()).validate().to_dict() == cfg.to_dict()  # idempotent
