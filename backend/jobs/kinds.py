"""The job-kind registry: a kind says how to validate its config and how to run it.

A kind lives in `backend/<area>/job.py`, subclasses `JobKind` and is decorated with `@register_kind`.
`load_kinds()` imports every such module, so adding a kind never touches the queue code. `get_kind`
imports only the module that declares the kind: which one that is, is read from the modules' source
(`kind_index`), so looking up "train" never imports the torch-heavy detect/decoys modules.
"""

from __future__ import annotations

import ast
import functools
import importlib
import pkgutil
from pathlib import Path
from typing import Any, Protocol

from backend.errors import UnknownMethod
from backend.progress import Progress


class JobContext(Protocol):
    """What a running job may do: report progress, log, publish artifacts, keep resumable state."""

    job_id: str
    device: str
    state_dir: Path  # persistent per job: a retried job finds its last state here
    artifacts_dir: Path  # shared with the app and the other workers

    def progress(self, progress: Progress) -> None:
        """The `backend.progress` protocol: a `ProgressFn`, so a kind hands `ctx.progress` straight to
        the work it runs. Metrics become a history point at `progress.step`."""

    def log(self, line: str) -> None: ...

    def add_artifact(self, kind: str, value: Any, label: str | None = None) -> None: ...


class JobKind:
    """Base class of a job kind. Subclasses set `name` (and `title`) and implement both methods."""

    name: str = ""
    title: str = ""

    def validate(self, config: dict) -> dict:
        """Return the normalised config, or raise `InvalidConfig` with a message a person can act on."""
        raise NotImplementedError

    def run(self, config: dict, ctx: JobContext) -> dict:
        """Do the work in the runner process; return a small JSON-able summary."""
        raise NotImplementedError


JOB_KINDS: dict[str, JobKind] = {}


def register_kind(cls: type[JobKind]) -> type[JobKind]:
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    JOB_KINDS[cls.name] = cls()
    return cls


def _kind_modules() -> list[str]:
    """`backend.<area>.job` for every area that has one, in a stable order."""
    import backend

    root = Path(backend.__path__[0])  # a file check: find_spec would import each area's package
    infos = sorted(pkgutil.iter_modules(backend.__path__), key=lambda m: m.name)
    return [f"backend.{i.name}.job" for i in infos if i.ispkg and (root / i.name / "job.py").is_file()]


def declared_kinds(source: str) -> list[str]:
    """The kind names a job module's source registers: `name = "..."` in classes decorated with
    `register_kind` (read with `ast`, nothing is imported)."""
    names = []
    for node in ast.parse(source).body:
        if not isinstance(node, ast.ClassDef):
            continue
        if not any(isinstance(d, ast.Name) and d.id == register_kind.__name__ for d in node.decorator_list):
            continue
        for stmt in node.body:
            if (
                isinstance(stmt, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "name" for t in stmt.targets)
                and isinstance(stmt.value, ast.Constant)
                and isinstance(stmt.value.value, str)
            ):
                names.append(stmt.value.value)
    return names


@functools.cache
def kind_index() -> dict[str, str]:
    """Kind name -> the module that registers it, for every `backend/<area>/job.py`."""
    import backend

    root = Path(backend.__path__[0])
    index: dict[str, str] = {}
    for module in _kind_modules():
        path = root / module.split(".")[1] / "job.py"
        for name in declared_kinds(path.read_text(encoding="utf-8")):
            index.setdefault(name, module)
    return index


def load_kinds() -> dict[str, JobKind]:
    """Import `backend.<area>.job` for every area that has one; returns the registry."""
    for module in _kind_modules():
        importlib.import_module(module)
    return JOB_KINDS


def get_kind(name: str) -> JobKind:
    """The registered kind. Imports only the module that declares it, so submitting a job does not
    pull every area's dependencies (torch) into the page process; a kind the source index cannot see
    (registered some other way) is looked for by importing every kind module."""
    if name not in JOB_KINDS and name in kind_index():
        importlib.import_module(kind_index()[name])
    if name not in JOB_KINDS:
        load_kinds()
    if name not in JOB_KINDS:
        raise UnknownMethod(f"Unknown job kind {name!r}; known kinds: {', '.join(sorted(JOB_KINDS))}")
    return JOB_KINDS[name]
