"""The job-kind registry: a kind says how to validate its config and how to run it.

A kind lives in `backend/<area>/job.py`, subclasses `JobKind` and is decorated with `@register_kind`.
`load_kinds()` imports every such module, so adding a kind never touches the queue code.
"""

from __future__ import annotations

import importlib
import importlib.util
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


def load_kinds() -> dict[str, JobKind]:
    """Import `backend.<area>.job` for every area that has one; returns the registry."""
    import backend

    for info in pkgutil.iter_modules(backend.__path__):
        if info.ispkg and importlib.util.find_spec(f"backend.{info.name}.job") is not None:
            importlib.import_module(f"backend.{info.name}.job")
    return KINDS


def get_kind(name: str) -> JobKind:
    kinds = load_kinds()
    if name not in kinds:
        raise UnknownMethod(f"Unknown job kind {name!r}; known kinds: {', '.join(sorted(kinds))}")
    return kinds[name]
