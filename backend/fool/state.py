"""Resumable state of a fooling run, written by time in a background thread, and keep_best weights on disk.

VGG19's weights and Adam moments are about 1.6 GB; writing them every 50 steps cost minutes per hour of
training. Now the state is written every `state_every_s` seconds (default 10 minutes), at the end, and
every `checkpoint_every` steps if asked. The training loop only copies the state to host memory
(`host_copy`); a writer thread saves it (weights-only torch format, temp file + `os.replace`, so a
crash leaves the previous state whole). The best validated weights (`keep_best`) go to
`best-<step>.safetensors` in the same folder instead of staying in RAM; the state names the step whose
file it relies on, and older files are removed only after a state naming a newer one is on disk.
"""

from __future__ import annotations

import os
import queue
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from backend.errors import InvalidConfig

STATE_FILE = "fool_state.pt"
_BEST = re.compile(r"^best-(\d+)\.safetensors$")


def host_copy(obj: Any) -> Any:
    """A copy of a (nested) state dict whose tensors live in host memory and no longer alias the run's."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: host_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(host_copy(v) for v in obj)
    return obj


def best_path(folder: Path, step: int) -> Path:
    return folder / f"best-{step}.safetensors"


def load_state(state_dir: Path | None, key: str) -> dict[str, Any] | None:
    """The state in `state_dir` (None if there is none); refuses one written for another config."""
    path = state_dir / STATE_FILE if state_dir else None
    if path is None or not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("key", state.get("config")) != key:
        raise InvalidConfig(f"{path} holds a run with another config; delete it or give a fresh state_dir.")
    return state


def load_best(folder: Path, step: int) -> dict[str, torch.Tensor]:
    path = best_path(folder, step)
    if not path.is_file():
        raise InvalidConfig(f"The best weights of step {step} ({path}) are missing; retry from the start.")
    return load_file(path)


class StateWriter:
    """Saves host copies of the run's state and best weights in one background thread, in order.

    `submit_*` return at once unless the previous write is still running (then they wait for it: at most
    one state is in flight, so memory stays bounded). An error in the thread is raised by the next call,
    and by `close`, which waits for everything submitted.
    """

    def __init__(self, folder: Path, referenced: int | None = None) -> None:
        self.folder = folder
        self.referenced = referenced  # the best step the state on disk relies on
        folder.mkdir(parents=True, exist_ok=True)
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="fool-state-writer", daemon=True)
        self._thread.start()
        self.written = 0  # states written (for tests and logs)
        self.last_write_s = 0.0

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                if self._error is None:
                    job()
            except BaseException as err:  # noqa: BLE001 - handed to the training loop
                self._error = err
            finally:
                self._queue.task_done()

    def _put(self, job: Callable[[], None]) -> None:
        self._raise()
        self._queue.put(job)

    def _raise(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise RuntimeError(f"Writing the resumable state failed: {err}") from err

    def submit_best(self, step: int, weights: dict[str, torch.Tensor]) -> None:
        """Save keep_best weights (already host copies) as best-<step>.safetensors."""

        def write() -> None:
            path = best_path(self.folder, step)
            tmp = path.with_suffix(".tmp")
            save_file({k: v.contiguous() for k, v in weights.items()}, str(tmp))
            os.replace(tmp, path)
            self._prune({step, self.referenced})  # the newest, and the one the state on disk names

        self._put(write)

    def submit_state(self, state: dict[str, Any]) -> None:
        """Save a state (already a host copy) atomically as STATE_FILE."""

        def write() -> None:
            began = time.perf_counter()
            path = self.folder / STATE_FILE
            tmp = path.with_suffix(".tmp")
            torch.save(state, tmp)
            os.replace(tmp, path)
            best = state.get("best") or {}
            self.referenced = int(best["step"]) if best else None
            self._prune({self.referenced})
            self.written += 1
            self.last_write_s = time.perf_counter() - began

        self._put(write)

    def _prune(self, keep: set[int | None]) -> None:
        for path in self.folder.iterdir():
            match = _BEST.match(path.name)
            if match and int(match.group(1)) not in keep:
                path.unlink(missing_ok=True)

    def flush(self) -> None:
        self._queue.join()
        self._raise()

    def close(self) -> None:
        """Wait for everything submitted, stop the thread, raise a write error if one happened."""
        if self._thread.is_alive():
            self._queue.join()
            self._queue.put(None)
            self._thread.join()
        self._raise()


class StatePolicy:
    """When to write: every `every_s` seconds, every `every_steps` steps (if set), and at the end."""

    def __init__(self, every_s: float, every_steps: int | None, total: int) -> None:
        self.every_s, self.every_steps, self.total = every_s, every_steps, total
        self.last = time.monotonic()

    def due(self, step: int) -> bool:
        now = time.monotonic()
        due = (
            step == self.total
            or (self.every_steps is not None and step % self.every_steps == 0)
            or now - self.last >= self.every_s
        )
        if due:
            self.last = now
        return due
