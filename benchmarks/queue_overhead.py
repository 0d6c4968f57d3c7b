"""Queue overhead and cache speed-up (a benchmark, not a test).

    python benchmarks/queue_overhead.py [--jobs 20] [--out benchmarks/results/queue_overhead.md]

Measures, for empty `selftest` jobs on the embedded SQLite queue and on Redis (when `redis-server` is
installed): the `submit()` call, submit-to-start latency (queued -> claimed by a consumer), the
per-job overhead of one job alone (submit -> finished: queue + spawning the runner process), and the
throughput of a batch on a 2-thread consumer. Then the result cache: computing a real heatmap
(`backend.explain.explain`) versus reading it back from `ResultCache` (npz bytes), with the ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

EMPTY = {"probe_torch": False}


def wait_done(job_ids: list[str], timeout: float = 300.0) -> None:
    from backend import jobs

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(jobs.get(j).done for j in job_ids):
            return
        time.sleep(0.01)
    raise TimeoutError("jobs did not finish; is the consumer running?")


def start_consumer(workers: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "backend", "worker", "--workers", str(workers), "--quiet"],
        cwd=REPO,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def queue_numbers(n_jobs: int) -> dict[str, float]:
    """Numbers for whatever queue the environment points at."""
    from backend import jobs

    consumer = start_consumer(workers=2)
    try:
        warm = jobs.submit("selftest", EMPTY)  # consumer start-up is not per-job overhead
        wait_done([warm], timeout=120)
        submit_s, latency_s, overhead_s = [], [], []
        for _ in range(n_jobs):  # one at a time: latency and overhead of a job alone
            t0 = time.perf_counter()
            job_id = jobs.submit("selftest", EMPTY)
            submit_s.append(time.perf_counter() - t0)
            wait_done([job_id])
            record = jobs.get(job_id)
            latency_s.append(record.started_at - record.submitted_at)
            overhead_s.append(record.finished_at - record.submitted_at)
        t0 = time.perf_counter()
        batch = [jobs.submit("selftest", EMPTY) for _ in range(n_jobs)]
        wait_done(batch)
        batch_s = time.perf_counter() - t0
        assert all(jobs.get(j).state == "succeeded" for j in batch)
    finally:
        consumer.terminate()
        consumer.wait(timeout=30)
    return {
        "submit() ms (median)": 1000 * statistics.median(submit_s),
        "submit-to-start ms (median)": 1000 * statistics.median(latency_s),
        "submit-to-start ms (max)": 1000 * max(latency_s),
        "per-job overhead, alone, ms (median)": 1000 * statistics.median(overhead_s),
        f"batch of {n_jobs}, 2 workers: jobs/s": n_jobs / batch_s,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_redis(fn, *args):
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        os.environ["FOOLING_LAB_QUEUE_URL"] = f"redis://127.0.0.1:{port}/0"
        return fn(*args)
    finally:
        os.environ.pop("FOOLING_LAB_QUEUE_URL", None)
        server.terminate()
        server.wait()


def heatmap_model():
    """EfficientNet-Lite0 with its shipped weights (the app's default model); shapes CNN if absent."""
    import torch

    from backend.errors import MissingWeights
    from backend.models import zoo

    try:
        model, size = zoo.load_pretrained("efficientnet_lite0"), 224
    except MissingWeights:
        model, size = zoo.build("shapes_cnn"), 64
    torch.manual_seed(0)
    return model.eval(), torch.rand(1, 3, size, size), model.arch


def cache_numbers(methods: list[str], repeats: int = 5) -> list[dict]:
    import hashlib

    from backend.cache import ResultCache, heatmap_key
    from backend.explain import explain

    model, x, arch = heatmap_model()
    image_sha = hashlib.sha256(x.numpy().tobytes()).hexdigest()
    rows = []
    with ResultCache(size_limit=1024**3) as cache:
        for method in methods:
            key = heatmap_key(image_sha, f"bench-{arch}", method, {})
            explain(model, x, method=method)  # warm-up (lazy init, allocator)
            compute = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                heat = explain(model, x, method=method).heatmap.detach().cpu().numpy()
                compute.append(time.perf_counter() - t0)
            cache.set_arrays(key, heatmap=heat, tag=f"bench-{arch}")
            hits = []
            for _ in range(repeats * 20):
                t0 = time.perf_counter()
                back = cache.get_arrays(key)
                hits.append(time.perf_counter() - t0)
            assert (back["heatmap"] == heat).all()
            miss, hit = statistics.median(compute), statistics.median(hits)
            rows.append(
                {
                    "model": arch,
                    "method": method,
                    "compute ms": 1000 * miss,
                    "hit ms": 1000 * hit,
                    "ratio": miss / hit,
                }
            )
    return rows


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, load average {load:.1f} at start"
    )


def render(embedded: dict, redis: dict | None, cache_rows: list[dict], n_jobs: int) -> str:
    lines = [
        "# Queue overhead and cache speed-up",
        "",
        f"Machine: {machine()}.",
        f"Run: `python benchmarks/queue_overhead.py --jobs {n_jobs}` "
        f"({time.strftime('%Y-%m-%d %H:%M')} UTC).",
        "",
        "## Empty jobs (`selftest`, no torch import)",
        "",
        "| measure | embedded (SQLite) | Redis |",
        "|---|---:|---:|",
    ]
    for name, value in embedded.items():
        other = f"{redis[name]:.1f}" if redis else "n/a (no redis-server)"
        lines.append(f"| {name} | {value:.1f} | {other} |")
    lines += [
        "",
        "Per-job overhead is dominated by spawning the runner process (`python -m backend.jobs.runner`),",
        "the price of a hard cancel that frees GPU memory; it is small next to any real job.",
        "",
        "## Result cache: heatmap computed vs read back",
        "",
        "| model | method | compute ms | cache hit ms | hit is N x faster |",
        "|---|---|---:|---:|---:|",
    ]
    for r in cache_rows:
        lines.append(
            f"| {r['model']} | {r['method']} | {r['compute ms']:.1f} | {r['hit ms']:.2f} | {r['ratio']:.0f} |"
        )
    lines += [
        "",
        "Read the absolute times against the load average above: on a shared, saturated machine both the",
        "heatmap computation and the runner spawn slow down several-fold; the cache hit barely moves.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--methods", default="gradient,gradcam,lrp,integrated_gradients")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "queue_overhead.md")
    args = parser.parse_args()
    from backend.config import get_settings

    device = get_settings().device_setting or "cpu"
    with tempfile.TemporaryDirectory(prefix="fooling-lab-bench-") as root:
        os.environ.update(
            FOOLING_LAB_DATA=f"{root}/data",
            FOOLING_LAB_MODELS=f"{root}/models",
            FOOLING_LAB_DEVICE=device,
        )
        os.environ.pop("FOOLING_LAB_QUEUE_URL", None)
        embedded = queue_numbers(args.jobs)
        print("embedded:", embedded, flush=True)
        redis = with_redis(queue_numbers, args.jobs)
        print("redis:", redis, flush=True)
        rows = cache_numbers(args.methods.split(","))
        for r in rows:
            print(
                f"cache {r['model']} {r['method']}: compute {r['compute ms']:.1f} ms, "
                f"hit {r['hit ms']:.2f} ms, ratio {r['ratio']:.0f}x",
                flush=True,
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(embedded, redis, rows, args.jobs))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
