"""Single-flight: identical requests made at the same time are computed once, and every caller waiting
for the same key gets that one result.

Thirty students opening the same demo at once ask for the same heatmaps within a second; a cache
alone does not help them (all thirty miss before the first one has stored its value). The pages of
one Streamlit server are threads of one process, so a lock-protected table of in-flight keys is
enough: the first caller (the leader) runs the function, later callers block on its `Event` and
receive its value or its exception. Nothing is remembered once the leader is done: the result cache
(`backend.cache`) holds values, this module only merges concurrent misses.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class _Call(Generic[T]):
    done: threading.Event = field(default_factory=threading.Event)
    value: T | None = None
    error: BaseException | None = None
    waiters: int = 0


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What `SingleFlight.do` returns: the value, and whether this caller computed it (the leader) or
    waited for another caller's computation (`shared`)."""

    value: T
    shared: bool


class SingleFlight:
    """Merge concurrent calls with the same key into one computation (per process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, _Call] = {}
        self.computed = 0  # leader runs since start (for tests and the load benchmark)
        self.merged = 0  # callers that waited for a leader instead of computing

    def do(self, key: str, fn: Callable[[], T], timeout: float | None = None) -> Outcome[T]:
        """`fn()` once for all concurrent callers of `key`; a waiter re-raises the leader's exception.

        `timeout` (seconds) bounds a waiter's wait; past it the waiter computes on its own rather than
        hang on a leader that is stuck.
        """
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if leader:
                call = self._calls[key] = _Call()
                self.computed += 1
            else:
                call.waiters += 1
                self.merged += 1
        if not leader:
            if call.done.wait(timeout):
                if call.error is not None:
                    raise call.error
                return Outcome(call.value, shared=True)  # type: ignore[arg-type]
            return Outcome(fn(), shared=False)
        try:
            call.value = fn()
            return Outcome(call.value, shared=False)
        except BaseException as err:
            call.error = err
            raise
        finally:
            with self._lock:
                self._calls.pop(key, None)
            call.done.set()

    def in_flight(self) -> int:
        with self._lock:
            return len(self._calls)


FLIGHTS = SingleFlight()  # the process-wide instance the services share
