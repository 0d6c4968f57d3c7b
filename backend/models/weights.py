"""Read a state dict from a file without ever running code from it, and load it strictly.

`.safetensors` is read as tensors only; anything else goes through `torch.load(weights_only=True)`,
which refuses pickles that need code. Every failure becomes a typed error that says what to do.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from backend.errors import CorruptCheckpoint, IncompatibleCheckpoint, UnsafeCheckpoint

RESAVE_HINT = (
    "Re-save it as plain weights, e.g. `torch.save(model.state_dict(), 'weights.pt')`, "
    "or as safetensors (`safetensors.torch.save_file(model.state_dict(), 'weights.safetensors')`)."
)
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a `.safetensors` / `.pt` / `.pth` file (a {"state_dict": ...} wrapper is unwrapped)."""
    path = Path(path)
    if not path.is_file():
        raise IncompatibleCheckpoint(f"Checkpoint file {path} does not exist.")
    if path.stat().st_size == 0:
        raise CorruptCheckpoint(f"Checkpoint file {path.name} is empty (0 bytes); upload it again.")
    if _is_safetensors(path):
        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as err:
            raise CorruptCheckpoint(
                f"{path.name} is not a readable safetensors file (corrupt or truncated?): {err}"
            ) from err
    return _unwrap(_torch_load(path), path.name)


def _is_safetensors(path: Path) -> bool:
    if path.suffix == ".safetensors":
        return True
    with path.open("rb") as fh:
        head = fh.read(9)
    # safetensors: 8-byte little-endian header length, then a JSON object
    return len(head) == 9 and head[8:9] == b"{" and not zipfile.is_zipfile(path)


def _torch_load(path: Path) -> object:
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Weights only load failed" in str(err) or "weights_only" in str(err):
            raise UnsafeCheckpoint(
                f"{path.name} is a full pickle that needs arbitrary code to load, so it was refused "
                f"(loading it could run anything). {RESAVE_HINT}"
            ) from err
        raise CorruptCheckpoint(f"{path.name} is not a PyTorch checkpoint (corrupt?): {err}") from err
    except (
        RuntimeError,
        EOFError,
        OSError,
        ValueError,
        IndexError,
        KeyError,
        TypeError,
        zipfile.BadZipFile,
    ) as err:  # random bytes reach the weights-only unpickler's own asserts and lookups
        raise CorruptCheckpoint(
            f"{path.name} could not be read as a PyTorch checkpoint (corrupt or truncated?): "
            f"{str(err).splitlines()[0] if str(err) else type(err).__name__}"
        ) from err


def _unwrap(obj: object, name: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for key in _WRAPPER_KEYS:
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if isinstance(obj, nn.Module):  # pragma: no cover - weights_only never yields a module
        obj = obj.state_dict()
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise IncompatibleCheckpoint(
            f"{name} holds no state dict (expected a mapping of parameter names to tensors). {RESAVE_HINT}"
        )
    prefix = "module."  # saved from DataParallel
    if all(k.startswith(prefix) for k in obj):
        obj = {k[len(prefix) :]: v for k, v in obj.items()}
    return dict(obj)


def load_strict(model: nn.Module, state: dict[str, torch.Tensor], *, source: str, arch: str) -> nn.Module:
    """`load_state_dict(strict=True)` with a message that lists what does not fit."""
    expected = model.state_dict()
    # files saved before PyTorch 0.4.1 (e.g. torchvision's DenseNet) lack BatchNorm's step counter
    state = dict(state)
    for key in expected:
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros((), dtype=torch.long)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
            if items:
                more = f" (+{len(items) - 5} more)" if len(items) > 5 else ""
                parts.append(f"{len(items)} {label}: {', '.join(items[:5])}{more}")
        raise IncompatibleCheckpoint(
            f"{source} does not fit architecture {arch!r}: " + "; ".join(parts) + ". Pick the architecture "
            "the weights were trained with (and the right number of classes)."
        )
    model.load_state_dict(state, strict=True)
    return model
