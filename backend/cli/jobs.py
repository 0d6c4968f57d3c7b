"""`python -m backend jobs list|show|logs|submit|cancel|retry`: the job facade from a terminal.

`python -m backend jobs submit selftest --wait` is a worker health check: it prints the device and
torch build of whichever consumer ran it.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

from backend.errors import InvalidConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("jobs", help="list, inspect, submit, cancel and retry queued jobs")
    cmds = p.add_subparsers(dest="jobs_command", required=True)
    ls = cmds.add_parser("list", help="newest first")
    ls.add_argument("--state")
    ls.add_argument("--kind")
    ls.add_argument("--limit", type=int, default=20)
    show = cmds.add_parser("show", help="the whole record as JSON")
    show.add_argument("job_id")
    logs = cmds.add_parser("logs")
    logs.add_argument("job_id")
    logs.add_argument("--tail", type=int, default=200)
    submit = cmds.add_parser("submit", help="validate and queue a job")
    submit.add_argument("kind")
    submit.add_argument("--config", default="{}", help="JSON text, or @file.json")
    submit.add_argument("--wait", action="store_true", help="wait for the end and print the result")
    submit.add_argument("--timeout", type=float, default=600.0)
    for name in ("cancel", "retry"):
        cmds.add_parser(name).add_argument("job_id")
    p.set_defaults(func=run)


def _config(text: str) -> dict:
    try:
        raw = Path(text[1:]).read_text() if text.startswith("@") else text
        config = json.loads(raw)
    except (OSError, json.JSONDecodeError) as err:
        raise InvalidConfig(f"--config must be JSON text or @file.json: {err}") from err
    if not isinstance(config, dict):
        raise InvalidConfig("--config must be a JSON object")
    return config


def _wait(job_id: str, timeout: float) -> int:
    from backend import jobs

    deadline = time.monotonic() + timeout
    record = jobs.get(job_id)
    while not record.done and time.monotonic() < deadline:
        time.sleep(0.2)
        record = jobs.get(job_id)
    if not record.done:
        print(f"{job_id} still {record.state} after {timeout:.0f}s (is a worker running? ./lab worker)")
        return 1
    print(
        json.dumps(
            {"id": job_id, "state": record.state, "result": record.result, "error": record.error}, indent=2
        )
    )
    return 0 if record.state == "succeeded" else 1


def run(args: argparse.Namespace) -> int:
    from backend import jobs

    cmd = args.jobs_command
    if cmd == "list":
        for r in jobs.list_jobs(state=args.state, kind=args.kind, limit=args.limit):
            print(f"{r.id:28} {r.kind:10} {r.state:10} {100 * r.progress.fraction:5.1f}%  {r.worker or ''}")
    elif cmd == "show":
        record = asdict(jobs.get(args.job_id))
        print(json.dumps(record, indent=2, default=str))
    elif cmd == "logs":
        print("\n".join(jobs.logs(args.job_id, tail=args.tail)))
    elif cmd == "submit":
        job_id = jobs.submit(args.kind, _config(args.config))
        print(job_id, flush=True)
        if args.wait:
            return _wait(job_id, args.timeout)
    elif cmd == "cancel":
        print(jobs.cancel(args.job_id).state)
    elif cmd == "retry":
        print(jobs.retry(args.job_id))
    return 0
