"""A user's CSV: what reads, what is changed (and said), and every hostile file gets a clear message."""

from __future__ import annotations

import numpy as np
import pytest

from backend.errors import InvalidConfig, InvalidDataset
from backend.services.tabular import save_upload
from backend.tabular import csv_io
from backend.tabular.csv_io import read_csv


def table_text(n: int = 40, sep: str = ",") -> str:
    rng = np.random.default_rng(0)
    lines = [sep.join(["age", "city", "sex", "income"])]
    for i in range(n):
        lines.append(
            sep.join(
                [
                    str(20 + i % 40),
                    ["Oslo", "Bergen"][i % 2],
                    ["f", "m"][i % 3 == 0],
                    str(int(rng.random() < 0.4)),
                ]
            )
        )
    return "\n".join(lines) + "\n"


def test_a_plain_csv_reads_with_types_detected():
    t = read_csv(table_text().encode(), target="income", protected=["sex"])
    assert t.numeric == ["age"] and t.categorical == ["city", "sex"] and t.classes == ["0", "1"]
    assert t.protected == ["sex"] and t.target_name == "income" and len(t) == 40 and not t.notes
    assert t.columns["age"].dtype == np.float64 and t.classes[t.positive] == "1"


def test_another_delimiter_is_sniffed_and_a_bom_ignored():
    t = read_csv(("\ufeff" + table_text(sep=";")).encode(), target="income", protected=["sex"])
    assert t.numeric == ["age"] and len(t) == 40
    assert read_csv(table_text(sep="\t").encode(), target="income").categorical == ["city", "sex"]


def test_wrong_delimiter_says_so():
    with pytest.raises(InvalidDataset, match="Only one column.*delimiter"):
        read_csv(table_text(sep=":").encode(), target="income")


def test_missing_target_lists_the_columns():
    with pytest.raises(
        InvalidDataset, match="No target column named 'salary'; the columns are: age, city, sex, income"
    ):
        read_csv(table_text().encode(), target="salary")
    with pytest.raises(InvalidDataset, match="No protected column named 'race'"):
        read_csv(table_text().encode(), target="income", protected=["race"])


def test_all_missing_columns_are_dropped_or_refused():
    rows = table_text().splitlines()
    text = "\n".join([rows[0] + ",notes"] + [r + ",?" for r in rows[1:]]) + "\n"
    t = read_csv(text.encode(), target="income", protected=["sex"])
    assert "notes" not in t.columns and any("notes" in n and "missing" in n for n in t.notes)
    blank_sex = "\n".join(",".join(r.split(",")[:2] + [""] + r.split(",")[3:]) for r in rows) + "\n"
    blank_sex = blank_sex.replace("age,city,,income", "age,city,sex,income")
    with pytest.raises(InvalidDataset, match="protected column 'sex' has no values"):
        read_csv(blank_sex.encode(), target="income", protected=["sex"])
    no_labels = "\n".join([rows[0]] + [r.rsplit(",", 1)[0] + ",NA" for r in rows[1:]]) + "\n"
    with pytest.raises(InvalidDataset, match="target column 'income' has no values"):
        read_csv(no_labels.encode(), target="income")


def test_one_row_is_too_few():
    text = "age,sex,income\n30,f,1\n"
    with pytest.raises(InvalidDataset, match="1 labelled row.*at least 20"):
        read_csv(text.encode(), target="income")


def test_a_2_gb_file_is_refused_before_it_is_read(tmp_path):
    big = tmp_path / "big.csv"
    with big.open("wb") as fh:  # sparse: 2 GiB on paper, no disk used
        fh.truncate(2 * 1024**3)
    with pytest.raises(InvalidDataset, match=r"2\.0 GB; the limit is 32\.0 MB"):
        read_csv(big, target="income")
    with pytest.raises(InvalidDataset, match="limit"):
        save_upload(b"a,b\n" * (csv_io.MAX_BYTES // 4 + 1), "big.csv")


def test_non_utf8_bytes_say_where():
    data = table_text().encode().replace(b"Bergen", "Bærum".encode("latin-1"), 1)
    with pytest.raises(InvalidDataset, match=r"not UTF-8 text: byte 0xe6 at offset \d+ \(line 3\).*UTF-8"):
        read_csv(data, target="income")
    with pytest.raises(InvalidDataset, match="NUL bytes"):
        read_csv(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", target="income")


def test_ragged_rows_duplicate_names_and_empty_files():
    text = table_text() + "33,Oslo\n41,Oslo,m,1,extra\n"
    with pytest.raises(InvalidDataset, match=r"2 row\(s\) do not have 4 fields \(lines 42, 43\)"):
        read_csv(text.encode(), target="income")
    with pytest.raises(InvalidDataset, match="unique; repeated: age"):
        read_csv(table_text().replace("city", "age", 1).encode(), target="income")
    with pytest.raises(InvalidDataset, match="empty"):
        read_csv(b"", target="income")


def test_targets_and_protected_columns_must_make_sense():
    one_class = table_text().replace(",1\n", ",0\n")
    with pytest.raises(InvalidDataset, match="only one value"):
        read_csv(one_class.encode(), target="income")
    with pytest.raises(InvalidDataset, match="number to predict"):
        read_csv(table_text().encode(), target="age")
    with pytest.raises(InvalidDataset, match="bin it into groups"):
        read_csv(table_text().encode(), target="income", protected=["age"])
    coded = table_text().replace(",f,", ",0,").replace(",m,", ",1,")
    t = read_csv(coded.encode(), target="income", protected=["sex"])
    assert "sex" in t.categorical and any("read as categories" in n for n in t.notes)


def test_identifiers_are_dropped_and_rare_categories_merged():
    rows = ["id,word,income"] + [f"{i},w{i % 45},{i % 2}" for i in range(200)]
    t = read_csv(
        ("\n".join(rows) + "\n").replace("id", "id", 1).encode(), target="income", categorical=["id"]
    )
    assert "id" not in t.columns and any("identifier" in n for n in t.notes)
    assert len(set(t.columns["word"])) == csv_io.MAX_CATEGORIES and csv_io.OTHER in set(t.columns["word"])


def test_uploads_must_be_csv_files():
    with pytest.raises(InvalidConfig, match="not a CSV"):
        save_upload(b"x", "weights.pt")
