"""How the commands show progress: one `backend.progress` callback that prints a line per report."""

from __future__ import annotations

import sys

from backend.progress import Progress


def print_progress(p: Progress) -> None:
    """`[ 40%] message` on stderr (stdout stays for the command's result)."""
    print(f"[{p.fraction:4.0%}] {p.message or ''}", file=sys.stderr, flush=True)
