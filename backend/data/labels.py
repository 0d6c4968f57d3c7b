"""Dataset labels follow the checkpoint's classes: folder names matched to the card's class names.

A folder dataset's sub-folders are classes *by name*, never by their alphabetical position: a "cat/dog"
zip used with an ImageNet model must label its cats as ImageNet's cat classes, not as tench and goldfish.
A folder name matches a class when, compared case-insensitively with `_`, `-` and spaces alike, it is
(in this order of precedence) the class's name, its ImageNet WNID (`n02123045`), or one of ImageNet's
WordNet synonyms for it ("tabby cat"). WNIDs and synonyms come from `assets/imagenet_classes.tsv`
(made once by `tools/make_imagenet_classes.py`; provenance in its header). A folder that matches
nothing, or two classes equally well, is refused naming the closest class names; an explicit mapping
`{"folder": "class name or index"}` overrides the matching folder by folder.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from backend.config import ASSETS_DIR
from backend.errors import InvalidDataset

IMAGENET_TABLE = ASSETS_DIR / "imagenet_classes.tsv"
# How a folder found its class, strongest first (a folder takes the strongest tier that matches).
TIERS = ("name", "wnid", "synonym")
_SEPARATORS = re.compile(r"[\s_\-]+")


def normalize_name(name: str) -> str:
    """Case-folded, with runs of `_`, `-` and white space as one space: 'Tabby_Cat' == 'tabby cat'."""
    return _SEPARATORS.sub(" ", str(name)).strip().casefold()


@dataclass(frozen=True)
class ImageNetClass:
    index: int
    wnid: str
    name: str  # torchvision's spelling, what cards carry
    synonyms: tuple[str, ...]


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[ImageNetClass, ...]:
    """The 1000 ImageNet-1k classes in index order, read from the shipped table."""
    rows = []
    for line in IMAGENET_TABLE.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        index, wnid, name, synonyms = line.split("\t")
        rows.append(ImageNetClass(int(index), wnid, name, tuple(s.strip() for s in synonyms.split(","))))
    return tuple(rows)


@lru_cache(maxsize=1)
def _imagenet_lookup() -> tuple[dict[str, int], dict[str, int], dict[str, list[int]]]:
    by_name, by_wnid, by_synonym = {}, {}, {}
    for c in imagenet_classes():
        by_name[normalize_name(c.name)] = c.index
        by_wnid[c.wnid.casefold()] = c.index
        for s in c.synonyms:
            by_synonym.setdefault(normalize_name(s), []).append(c.index)
    return by_name, by_wnid, by_synonym


def imagenet_entry(class_name: str) -> ImageNetClass | None:
    """The ImageNet class a checkpoint's class name denotes: by name, WNID, or an unambiguous synonym."""
    by_name, by_wnid, by_synonym = _imagenet_lookup()
    key = normalize_name(class_name)
    index = by_name.get(key, by_wnid.get(key))
    if index is None and len(by_synonym.get(key, [])) == 1:
        index = by_synonym[key][0]
    return None if index is None else imagenet_classes()[index]


@dataclass(frozen=True)
class _Aliases:
    """Every normalised spelling of every class, per tier: tier -> alias -> class indices."""

    classes: tuple[str, ...]
    tiers: dict[str, dict[str, list[int]]]

    @classmethod
    def of(cls, classes: Sequence[str]) -> _Aliases:
        tiers: dict[str, dict[str, list[int]]] = {t: {} for t in TIERS}
        table = imagenet_classes()
        is_imagenet = len(classes) == len(table) and all(
            c == e.name for c, e in zip(classes, table, strict=True)
        )
        for i, name in enumerate(classes):
            tiers["name"].setdefault(normalize_name(name), []).append(i)
            entry = table[i] if is_imagenet else imagenet_entry(name)
            if entry is not None:
                tiers["wnid"].setdefault(entry.wnid.casefold(), []).append(i)
                for s in (entry.name, *entry.synonyms):
                    tiers["synonym"].setdefault(normalize_name(s), []).append(i)
        return cls(tuple(classes), tiers)

    def find(self, folder: str) -> tuple[str, list[int]]:
        """(tier, class indices) of the strongest tier that knows `folder`; ("", []) if none does."""
        key = normalize_name(folder)
        for tier in TIERS:
            hits = sorted(set(self.tiers[tier].get(key, [])))
            if hits:
                return tier, hits
        return "", []

    def closest(self, folder: str, n: int = 5) -> list[str]:
        """Class names whose spellings are closest to `folder` (difflib), best first."""
        spellings: dict[str, set[int]] = {}
        for table in self.tiers.values():
            for alias, indices in table.items():
                spellings.setdefault(alias, set()).update(indices)
        out: list[str] = []
        for alias in difflib.get_close_matches(normalize_name(folder), list(spellings), n=3 * n, cutoff=0.5):
            for i in sorted(spellings[alias]):
                label = self.label(i)
                if label not in out:
                    out.append(label)
        return out[:n]

    def label(self, i: int) -> str:
        entry = imagenet_entry(self.classes[i])
        wnid = (
            f" ({entry.wnid})"
            if entry is not None and normalize_name(entry.name) == normalize_name(self.classes[i])
            else ""
        )
        return f"{i} {self.classes[i]!r}{wnid}"


@lru_cache(maxsize=16)
def _aliases(classes: tuple[str, ...]) -> _Aliases:
    return _Aliases.of(classes)


@dataclass(frozen=True)
class ClassMapping:
    """Which class index each folder's images get, and how each was found (a tier, or "mapping")."""

    classes: tuple[str, ...]
    folders: dict[str, int] = field(default_factory=dict)
    how: dict[str, str] = field(default_factory=dict)

    def describe(self) -> list[str]:
        """One line per folder: `cat -> 281 tabby (synonym)`."""
        return [
            f"{folder} -> {index} {self.classes[index]} ({self.how[folder]})"
            for folder, index in self.folders.items()
        ]

    def to_dict(self) -> dict[str, dict[str, object]]:
        return {
            f: {"index": i, "class": self.classes[i], "how": self.how[f]} for f, i in self.folders.items()
        }


def _resolve_value(value: object, aliases: _Aliases, what: str) -> int:
    """A class given as an index (int) or as anything a folder name may be (name, WNID, synonym)."""
    k = len(aliases.classes)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidDataset(f"{what} must be a class name or index, not {value!r}.")
    if isinstance(value, int):
        if not 0 <= value < k:
            raise InvalidDataset(f"{what} gives class index {value}; it must be in [0, {k}).")
        return value
    tier, hits = aliases.find(value)
    if len(hits) == 1:
        return hits[0]
    if not hits and value.strip().isdigit() and int(value) < k:
        return int(value)
    return _refuse(value, aliases, tier, hits, what=f"{what} names {value!r}")


def _refuse(name: str, aliases: _Aliases, tier: str, hits: list[int], *, what: str) -> int:
    if hits:
        options = ", ".join(aliases.label(i) for i in hits)
        raise InvalidDataset(
            f"{what}, which matches several classes of this checkpoint ({tier}): {options}. "
            'Name it by the exact class name or WNID, or give a class mapping {"folder": index}.'
        )
    close = aliases.closest(name)
    hint = (
        f"closest: {', '.join(close)}"
        if close
        else f"its classes are {', '.join(aliases.classes[:12])}"
        + (", ..." if len(aliases.classes) > 12 else "")
    )
    raise InvalidDataset(
        f"{what}, which is none of this checkpoint's {len(aliases.classes)} classes ({hint}). Rename the "
        'folder to a class name, WNID or synonym, or give a class mapping {"folder": "class name or index"}.'
    )


def match_folders(
    folders: Sequence[str], classes: Sequence[str], mapping: Mapping[str, object] | None = None
) -> ClassMapping:
    """Each folder's class index in `classes` (see the module doc); raises `InvalidDataset` saying why."""
    if not classes:
        raise InvalidDataset("This checkpoint's card lists no classes, so folder names cannot be matched.")
    aliases = _aliases(tuple(classes))
    mapping = dict(mapping or {})
    unknown = sorted(set(mapping) - set(folders))
    if unknown:
        raise InvalidDataset(
            f"The class mapping names folder(s) {unknown} that the dataset does not have; "
            f"its folders: {', '.join(folders)}."
        )
    out, how = {}, {}
    for folder in folders:
        if folder in mapping:
            value = _resolve_value(mapping[folder], aliases, f"The class mapping for {folder!r}")
            out[folder], how[folder] = value, "mapping"
            continue
        tier, hits = aliases.find(folder)
        if len(hits) != 1:
            _refuse(folder, aliases, tier, hits, what=f"The dataset folder {folder!r}")
        out[folder], how[folder] = hits[0], tier
    return ClassMapping(tuple(classes), out, how)


def class_index(name: object, classes: Sequence[str], what: str = "The class") -> int:
    """One class given by index or by name/WNID/synonym (as a folder would be); `InvalidDataset` if none.

    `what` starts the error message, e.g. "Active fooling's c1".
    """
    return _resolve_value(name, _aliases(tuple(classes)), what)


def find_class(name: str, classes: Sequence[str]) -> int | None:
    """The index of `name` among `classes` if it matches exactly one, else None (no error)."""
    _, hits = _aliases(tuple(classes)).find(name)
    return hits[0] if len(hits) == 1 else None
