"""The job-kind registry: a kind says how to validate its config and how to run it.

A kind lives in `backend/<area>/job.py`, subclasses `JobKind` and is decorated with `@register_kind`.
`load_kinds()` imports every such module, so adding a kind never touches the queue code.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any, Protocol

from backend.errors import UnknownMethod


class JobContext(Protocol):
    """What a running job may do: report progress, log, publish artifacts, keep resumable state."""

    job_id: str
    device: str
    state_dir: Path  # persistent per job: a retried job finds its last state here
    artifacts_dir: Path  # shared with the app and the other workers

    def progress(
        self,
        fraction: float,
        *,
        step: int | None = None,
        total: int | None = None,
        metrics: dict[str, float] | None = None,
        message: str | None = None,
    ) -> None: ...

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


KINDS: dict[str, JobKind] = {}


def register_kind(cls: type[JobKind]) -> type[JobKind]:
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    KINDS[cls.name] = cls()
    return cls


def _kind_modules() -> list[str]:
    """`backend.<area>.job` for every area that has one, in a stable order."""
    import backend

    root = Path(backend.__path__[0])  # a file check: find_spec would import each area's package
    infos = sorted(pkgutil.iter_modules(backend.__path__), key=lambda m: m.name)
    return [f"backend.{i.name}.job" for i in infos if i.ispkg and (root / i.name / "job.py").is_file()]


def load_kinds() -> dict[str, JobKind]:
    """Import `backend.<area>.job` for every area that has one; returns the registry."""
    for module in _kind_modules():
        importlib.import_module(module)
    return KINDS


def get_kind(name: str) -> JobKind:
    """The registered kind; imports kind modules only until it is found (the area named like the kind
    first, then the queue's own `selftest`), so submitting a job does not import every area's
    dependencies into the page process."""
    if name not in KINDS:
        modules = _kind_modules()
        modules.sort(key=lambda m: (m != f"backend.{name}.job", m != __name__.rsplit(".", 1)[0] + ".job"))
        for module in modules:
            importlib.import_module(module)
            if name in KINDS:
                break
    if name not in KINDS:
        raise UnknownMethod(f"Unknown job kind {name!r}; known kinds: {', '.join(sorted(KINDS))}")
    return KINDS[name]
