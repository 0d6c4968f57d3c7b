"""A user's CSV as a `Table`, with a message a person can act on for every way a file can be wrong.

Refused, before anything is trained: files over `MAX_BYTES` (checked on the file size, before reading),
binary or non-UTF-8 bytes (the message says where), a delimiter that leaves a single column, ragged
rows, duplicate or blank column names, a missing target or protected column, an all-missing target or
protected column, fewer than `MIN_ROWS` labelled rows, a target with one class or more than
`MAX_CLASSES`. Changed and reported in `Table.notes`: all-missing feature columns and identifier-like
columns (dropped), rows without a target (dropped), rare categories beyond `MAX_CATEGORIES` (merged into
"(other)"), a numeric protected column with few values (read as categories).

Columns are numeric when every present value parses as a finite number, categorical otherwise (or when
listed in `categorical`). Missing values: blank, ?, NA, N/A, NaN, null, None (any case).
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from backend.errors import InvalidDataset
from backend.tabular.table import MISSING, Table

MAX_BYTES = 32 * 1024**2
MAX_ROWS = 300_000
MAX_COLUMNS = 200
MIN_ROWS = 20
MAX_CLASSES = 20
MAX_CATEGORIES = 30
MAX_PROTECTED_NUMERIC_VALUES = 10
OTHER = "(other)"
MISSING_TOKENS = {"", "?", "na", "n/a", "nan", "null", "none"}
DELIMITERS = ",;\t|"


def _size_text(n: int) -> str:
    return f"{n / 1024**3:.1f} GB" if n >= 1024**3 else f"{n / 1024**2:.1f} MB"


def read_bytes(source: bytes | str | Path) -> bytes:
    """The file's bytes, refusing anything over MAX_BYTES before it is read."""
    if isinstance(source, bytes | bytearray):
        size = len(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise InvalidDataset(f"CSV file {path} does not exist.")
        size = path.stat().st_size
    if size > MAX_BYTES:
        raise InvalidDataset(
            f"The CSV is {_size_text(size)}; the limit is {_size_text(MAX_BYTES)}. Sample it down (e.g. the "
            f"first {MAX_ROWS:,} rows) or keep only the columns you need."
        )
    if size == 0:
        raise InvalidDataset("The CSV file is empty.")
    return bytes(source) if isinstance(source, bytes | bytearray) else Path(source).read_bytes()


def decode(data: bytes) -> str:
    """UTF-8 text (a BOM is allowed); other encodings get the byte and line where they fail."""
    if b"\x00" in data[:65536]:
        raise InvalidDataset("This is not a text file (it contains NUL bytes); upload a CSV.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InvalidDataset(
            f"The CSV is not UTF-8 text: byte 0x{data[err.start]:02x} at offset {err.start} (line {line}) "
            "cannot be decoded. Save it as UTF-8 (in Excel: 'CSV UTF-8')."
        ) from None


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    sample = text[:65536]
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS)
    except csv.Error:
        return csv.excel


def parse(text: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows; refuses one-column files, bad names and ragged rows."""
    dialect = _dialect(text)
    reader = csv.reader(text.splitlines(), dialect)
    try:
        header = next(reader, None)
        if header is None:
            raise InvalidDataset("The CSV has no header row.")
        rows = []
        bad: list[int] = []
        for row in reader:
            if not row or all(not v.strip() for v in row):
                continue
            if len(row) != len(header):
                bad.append(reader.line_num)
                continue
            rows.append(row)
            if len(rows) > MAX_ROWS:
                raise InvalidDataset(f"The CSV has more than {MAX_ROWS:,} rows; sample it down first.")
    except csv.Error as err:
        raise InvalidDataset(f"The CSV cannot be parsed at line {reader.line_num}: {err}") from None
    header = [h.strip() for h in header]
    if len(header) < 2:
        raise InvalidDataset(
            f"Only one column found ({header[0][:60]!r}); a table needs a target and at least one feature."
            f"{_delimiter_hint(header[0])} Separate the columns with one of , ; tab |."
        )
    if len(header) > MAX_COLUMNS:
        raise InvalidDataset(f"The CSV has {len(header)} columns; the limit is {MAX_COLUMNS}.")
    if any(not h for h in header):
        raise InvalidDataset(f"Column {header.index('') + 1} has no name; every column needs a header.")
    dupes = sorted(n for n, c in Counter(header).items() if c > 1)
    if dupes:
        raise InvalidDataset(f"Column names must be unique; repeated: {', '.join(dupes)}.")
    if bad:
        raise InvalidDataset(
            f"{len(bad)} row(s) do not have {len(header)} fields (lines {', '.join(map(str, bad[:5]))}"
            f"{', ...' if len(bad) > 5 else ''}); check for stray delimiters or unquoted commas."
        )
    return header, rows


def _delimiter_hint(header: str) -> str:
    """Which character probably separates the columns of a header that did not split."""
    counts = Counter(ch for ch in header if not ch.isalnum() and ch not in "_-. \"'")
    if not counts:
        return ""
    ch, n = counts.most_common(1)[0]
    return f" The header has {n} {ch!r}: is that its delimiter?"


def _missing(values: list[str]) -> np.ndarray:
    return np.array([v.strip().lower() in MISSING_TOKENS for v in values], dtype=bool)


def _as_numbers(values: list[str], missing: np.ndarray) -> np.ndarray | None:
    """Float64 with NaN for missing values, or None if a present value is not a finite number."""
    out = np.full(len(values), np.nan)
    for i, (v, m) in enumerate(zip(values, missing)):
        if m:
            continue
        try:
            f = float(v)
        except ValueError:
            return None
        if not math.isfinite(f):
            return None
        out[i] = f
    return out


def _categories(values: list[str], missing: np.ndarray, column: str, notes: list[str]) -> np.ndarray:
    arr = np.array([v.strip() for v in values], dtype=object)
    arr[missing] = MISSING
    counts = Counter(arr.tolist())
    if len(counts) > MAX_CATEGORIES:
        keep = {c for c, _ in counts.most_common(MAX_CATEGORIES - 1)}
        arr = np.array([v if v in keep else OTHER for v in arr], dtype=object)
        notes.append(
            f"{column}: {len(counts)} categories; kept the {MAX_CATEGORIES - 1} most frequent, "
            f"the rest became {OTHER!r}"
        )
    return arr.astype(str)


def read_csv(
    source: bytes | str | Path,
    *,
    target: str,
    protected: Sequence[str] = (),
    categorical: Sequence[str] | None = None,
    drop: Sequence[str] = (),
    positive: str | None = None,
    name: str = "csv",
) -> Table:
    """A `Table` from a CSV: `target` column, `protected` attributes, optional forced categoricals."""
    header, rows = parse(decode(read_bytes(source)))
    for label, wanted in (("target", [target]), ("protected", list(protected)), ("drop", list(drop))):
        absent = [c for c in wanted if c not in header]
        if absent:
            raise InvalidDataset(
                f"No {label} column named {', '.join(map(repr, absent))}; the columns are: "
                f"{', '.join(header[:30])}{' ...' if len(header) > 30 else ''}."
            )
    if target in protected:
        raise InvalidDataset(f"{target!r} is the target; it cannot also be a protected attribute.")
    forced = set(categorical or ())
    unknown = forced - set(header)
    if unknown:
        raise InvalidDataset(f"No column named {', '.join(sorted(unknown))} to read as categorical.")
    notes: list[str] = []
    values = {h: [r[i] for r in rows] for i, h in enumerate(header)}
    label_missing = _missing(values[target])
    if label_missing.all():
        raise InvalidDataset(f"The target column {target!r} has no values.")
    if label_missing.any():
        notes.append(f"dropped {int(label_missing.sum())} row(s) without a {target!r} value")
        keep = ~label_missing
        values = {h: [v for v, k in zip(vals, keep) if k] for h, vals in values.items()}
    n = len(values[target])
    if n < MIN_ROWS:
        raise InvalidDataset(f"The CSV has {n} labelled row(s); training needs at least {MIN_ROWS}.")
    labels = [v.strip() for v in values[target]]
    classes = sorted(set(labels), key=_natural)
    if len(classes) < 2:
        raise InvalidDataset(
            f"The target {target!r} has only one value ({classes[0]!r}); nothing to predict."
        )
    if len(classes) > MAX_CLASSES:
        raise InvalidDataset(
            f"The target {target!r} has {len(classes)} distinct values (at most {MAX_CLASSES}); is it a "
            "number to predict rather than a class? Bin it into classes first."
        )
    if positive is not None and positive not in classes:
        raise InvalidDataset(f"positive class {positive!r} is not a value of {target!r}: {classes[:10]}")
    columns: dict[str, np.ndarray] = {}
    numeric_cols, categorical_cols = [], []
    for column in header:
        if column == target or column in drop:
            continue
        raw = values[column]
        missing = _missing(raw)
        if missing.all():
            if column in protected:
                raise InvalidDataset(f"The protected column {column!r} has no values.")
            notes.append(f"dropped {column!r}: every value is missing")
            continue
        numbers = None if column in forced else _as_numbers(raw, missing)
        if numbers is not None and column in protected:
            distinct = np.unique(numbers[~missing])
            if len(distinct) > MAX_PROTECTED_NUMERIC_VALUES:
                raise InvalidDataset(
                    f"The protected column {column!r} is numeric with {len(distinct)} values; the "
                    "counterfactual test flips a protected attribute between groups, so bin it into groups "
                    "(e.g. age bands) first."
                )
            notes.append(f"{column}: protected, its {len(distinct)} numeric values read as categories")
            numbers = None
        if numbers is not None:
            columns[column] = numbers
            numeric_cols.append(column)
            continue
        present = [v.strip() for v, m in zip(raw, missing) if not m]
        if column not in protected and len(set(present)) == len(present) > MAX_CATEGORIES:
            notes.append(f"dropped {column!r}: every value is different (an identifier?)")
            continue
        columns[column] = _categories(raw, missing, column, notes)
        categorical_cols.append(column)
    if not columns:
        raise InvalidDataset("No usable feature column is left besides the target.")
    return Table(
        name=name,
        columns=columns,
        numeric=numeric_cols,
        categorical=categorical_cols,
        target=np.array([classes.index(v) for v in labels], dtype=np.int64),
        classes=classes,
        target_name=target,
        protected=list(protected),
        positive=classes.index(positive) if positive is not None else min(1, len(classes) - 1),
        source=f"user CSV {name}",
        notes=notes,
    )


def _natural(value: str) -> tuple:
    """Numbers in numeric order, then text: classes '0' < '1' < '10', 'no' < 'yes'."""
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


def csv_columns(source: bytes | str | Path) -> list[str]:
    """The header of a CSV (for a form's target / protected pickers), with the same checks as reading."""
    header, _ = parse(decode(read_bytes(source)))
    return header
