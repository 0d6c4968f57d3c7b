"""The `selftest` job kind: a worker health check that exercises the whole queue.

It reports the worker's device, torch build and the GPUs it was given (`devices` asks for N, as a
fool job does), computes a result that depends only on its config
(so runs on different workers can be compared), and can take steps with progress, checkpoint each
step atomically to its state dir (a retried run resumes where the last one stopped), or fail on
purpose. The queue tests use it; so can a person checking that a new GPU worker is healthy.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time

from backend.errors import FoolingLabError, InvalidConfig
from backend.jobs.kinds import JobContext, JobKind, register_kind
from backend.progress import Progress
from backend.storage import write_atomic

FAIL_MODES = (None, "error", "exception")
MAX_STEPS = 100_000
CHECKPOINT = "selftest_checkpoint.json"
RUNS = "selftest_runs.log"
OPTIONS = frozenset({"seed", "steps", "sleep_s", "fail", "probe_torch", "payload_bytes", "devices"})


class SelftestFailure(FoolingLabError):
    """Raised on purpose by a selftest with `fail: "error"`."""


def step_digest(seed: int, step: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{step}".encode()).digest()[:8], "big")


def expected_value(seed: int, steps: int) -> str:
    """The result a correct run must produce, whatever worker ran it and however often it resumed."""
    acc = step_digest(seed, -1)
    for step in range(steps):
        acc = (acc * 31 + step_digest(seed, step)) % (2**61 - 1)
    return f"{acc:016x}"


def _int(config: dict, name: str, default: int, lo: int, hi: int) -> int:
    value = config.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidConfig(f"selftest: {name!r} must be an integer in [{lo}, {hi}], not {value!r}")
    return value


@register_kind
class SelftestKind(JobKind):
    name = "selftest"
    title = "Worker self-test"

    def validate(self, config: dict) -> dict:
        if not isinstance(config, dict):
            raise InvalidConfig(f"selftest: the config must be a dict, not {type(config).__name__}")
        unknown = set(config) - OPTIONS
        if unknown:
            raise InvalidConfig(f"selftest: unknown option(s) {sorted(unknown)}")
        sleep_s = config.get("sleep_s", 0.0)
        if isinstance(sleep_s, bool) or not isinstance(sleep_s, int | float) or not 0 <= sleep_s <= 60:
            raise InvalidConfig(
                f"selftest: 'sleep_s' must be a number of seconds in [0, 60], not {sleep_s!r}"
            )
        if config.get("fail") not in FAIL_MODES:
            raise InvalidConfig(f"selftest: 'fail' must be one of {FAIL_MODES}, not {config.get('fail')!r}")
        return {
            "seed": _int(config, "seed", 0, -(2**31), 2**31),
            "steps": _int(config, "steps", 0, 0, MAX_STEPS),
            "sleep_s": float(sleep_s),
            "fail": config.get("fail"),
            "probe_torch": bool(config.get("probe_torch", True)),
            "payload_bytes": _int(config, "payload_bytes", 0, 0, 64 * 1024**2),
            "devices": _int(config, "devices", 1, 1, 64),
        }

    def run(self, config: dict, ctx: JobContext) -> dict:
        seed, steps = config["seed"], config["steps"]
        with open(ctx.state_dir / RUNS, "a") as f:
            f.write(f"{socket.gethostname()}:{os.getpid()}\n")
        runs = len((ctx.state_dir / RUNS).read_text().splitlines())
        start, acc = 0, step_digest(seed, -1)
        checkpoint = ctx.state_dir / CHECKPOINT
        if checkpoint.exists():
            saved = json.loads(checkpoint.read_text())
            start, acc = saved["step"], int(saved["acc"], 16)
            ctx.log(f"resuming from step {start}")
        for step in range(start, steps):
            if config["sleep_s"]:
                time.sleep(config["sleep_s"])
            acc = (acc * 31 + step_digest(seed, step)) % (2**61 - 1)
            state = {"step": step + 1, "acc": f"{acc:016x}", "payload": "x" * config["payload_bytes"]}
            write_atomic(checkpoint, json.dumps(state).encode())
            ctx.progress(Progress(step + 1, steps, f"step {step + 1}/{steps}", {"loss": 1.0 / (step + 2)}))
        if config["fail"] == "error":
            raise SelftestFailure("The selftest failed on purpose (config 'fail': 'error').")
        if config["fail"] == "exception":
            raise RuntimeError("selftest exception on purpose")
        report = {
            "value": f"{acc:016x}",
            "steps": steps,
            "resumed_from": start,
            "runs": runs,
            "device": ctx.device,
            "worker": f"{socket.gethostname()}:{os.getppid()}",
            "visible_gpus": os.environ.get("CUDA_VISIBLE_DEVICES"),  # the GPUs its worker handed over
        }
        if config["probe_torch"]:
            import torch

            report |= {"torch": torch.__version__, "cuda": torch.cuda.is_available()}
        ctx.log(f"selftest done: {report['value']}")
        return report
