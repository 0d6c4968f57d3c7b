"""Typed errors whose messages a person can act on; pages show `str(err)`, never a traceback."""


class FoolingLabError(Exception):
    """Base class: the message says what went wrong and what to do about it."""


class InvalidImage(FoolingLabError):
    """A file is not a decodable image, is truncated, or is too large."""


class UnsafeArchive(FoolingLabError):
    """A zip upload tries path traversal, is a zip bomb, or holds nothing usable."""


class InvalidDataset(FoolingLabError):
    """A dataset spec or folder cannot be used (missing, empty, wrong layout)."""


class MissingWeights(FoolingLabError):
    """Pretrained weights are not on this machine; the message says where to put them."""


class IncompatibleCheckpoint(FoolingLabError):
    """A checkpoint does not fit the chosen architecture (missing/unexpected keys, shapes)."""


class CorruptCheckpoint(IncompatibleCheckpoint):
    """A checkpoint file cannot be read at all: empty, truncated, random bytes, a broken archive."""


class TamperedCheckpoint(IncompatibleCheckpoint):
    """A registry checkpoint's weights no longer match the sha256 on its card (edited or damaged)."""


class UnsafeCheckpoint(FoolingLabError):
    """A checkpoint needs arbitrary code to load (a full pickle) and was refused."""


class CheckpointNotFound(FoolingLabError):
    """No checkpoint with that id in the registry."""


class InvalidConfig(FoolingLabError):
    """A job or method configuration is invalid; refused before anything is queued."""


class UnknownMethod(InvalidConfig):
    """An explanation method, attack, job kind or preset name that is not registered."""


class JobNotFound(FoolingLabError):
    """No job with that id."""


class QueueUnavailable(FoolingLabError):
    """The job queue (SQLite file or Redis server) cannot be reached."""


class UnsafeCacheEntry(FoolingLabError):
    """A cache value is not plain bytes (e.g. a planted pickle) and was refused."""


class NotAllowed(FoolingLabError):
    """A student session asked for something only the presenter may do (delete, cancel others' jobs)."""


class QuotaExceeded(NotAllowed):
    """A session's job or upload would go past its classroom quota; the message says which limit."""


class DiskBudgetExceeded(FoolingLabError):
    """Uploads, cache and artifacts would go past the lab's disk budget even after evicting old files."""


class DistributedRunFailed(FoolingLabError):
    """A data-parallel process of a job died or failed; the message says which and how to resume."""
