"""Load test of ``stance serve`` on loopback: throughput, latency, memory, vs. offline scoring.

Starts the real server (``stance serve``) in a subprocess, then for each number of
concurrent clients (1, 8, 32) and pairs per request (1, 32) sends a fixed number of
requests (bounded by a time limit) from client threads that each keep one HTTP/1.1
connection open. Reports pairs/s, p50/p99 request latency, the server's peak RSS, and
the same pairs scored offline by ``stance score`` (whole command) for the ratio.

    python benchmarks/serve.py [--model DIR] [--backend onnx-int8] [--requests 200] [--time-limit 60]
Prints a table and writes benchmarks/results/serve.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

from stance.model.classifier import BACKENDS, ONNX_BACKENDS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import machine_facts  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("STANCE_DATA_DIR", REPO.parent / "shared" / "data"))
STANCE = str(Path(sys.executable).with_name("stance"))


def load_pairs(n: int) -> list[dict]:
    with open(DATA / "sick" / "test.jsonl", encoding="utf-8") as handle:
        rows = [json.loads(line) for _, line in zip(range(n), handle, strict=False)]
    return [{"premise": r["premise"], "hypothesis": r["hypothesis"], "id": i} for i, r in enumerate(rows)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: str | None, backend: str, port: int) -> subprocess.Popen:
    command = [STANCE, "serve", "--backend", backend, "--port", str(port), "--max-queue", "100000"]
    if model:
        command += ["--model", model]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited: {process.stderr.read()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.3)
    raise SystemExit("server not ready in 300 s")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load(port: int, pairs: list[dict], clients: int, per_request: int, requests: int, time_limit: float) -> dict:
    """``requests`` requests of ``per_request`` pairs from ``clients`` threads (keep-alive)."""
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(requests))
    stop_at = time.perf_counter() + time_limit
    errors = []

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while time.perf_counter() < stop_at:
            with lock:
                index = next(counter, None)
            if index is None:
                break
            start = (index * per_request) % max(len(pairs) - per_request, 1)
            body = json.dumps({"pairs": pairs[start : start + per_request]})
            sent = time.perf_counter()
            connection.request("POST", "/v1/score", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            payload = response.read()
            elapsed = time.perf_counter() - sent
            with lock:
                if response.status != 200:
                    errors.append(response.status)
                else:
                    latencies.append(elapsed)
                    assert len(json.loads(payload)["results"]) == per_request
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    done = len(latencies)
    return {
        "clients": clients,
        "pairs_per_request": per_request,
        "requests": done,
        "errors": len(errors),
        "seconds": round(seconds, 2),
        "pairs_per_s": round(done * per_request / seconds, 1),
        "p50_ms": round(1000 * float(np.percentile(latencies, 50)), 1) if latencies else None,
        "p99_ms": round(1000 * float(np.percentile(latencies, 99)), 1) if latencies else None,
    }


def offline(model: str | None, backend: str, pairs: list[dict]) -> dict:
    """The same pairs through ``stance score`` (one whole command, start-up included)."""
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "pairs.jsonl"
        source.write_text("".join(json.dumps(p) + "\n" for p in pairs))
        command = [STANCE, "score", "--backend", backend, "--input", str(source), "--output",
                   str(Path(scratch) / "out.jsonl"), "--no-progress"] + (["--model", model] if model else [])  # fmt: skip
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seconds = time.perf_counter() - started
    return {"pairs": len(pairs), "seconds": round(seconds, 2), "pairs_per_s": round(len(pairs) / seconds, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model directory (default: the embedded default)")
    parser.add_argument("--backend", default="onnx-int8", choices=BACKENDS)
    parser.add_argument("--clients", nargs="*", type=int, default=[1, 8, 32])
    parser.add_argument("--pairs-per-request", nargs="*", type=int, default=[1, 32])
    parser.add_argument("--requests", type=int, default=200, help="requests per setting (bounded by --time-limit)")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per setting at most")
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "serve.json"))
    args = parser.parse_args()
    pairs = load_pairs(4000)
    if args.backend in ONNX_BACKENDS:  # build the export before timing anything
        subprocess.run([STANCE, "export"] + (["--model", args.model] if args.model else [])
                       + (["--int8"] if args.backend == "onnx-int8" else []), check=True)  # fmt: skip
    port = free_port()
    server = start_server(args.model, args.backend, port)
    runs = []
    try:
        load(port, pairs, 4, 8, 20, 30)  # warm-up, not reported
        for per_request in args.pairs_per_request:
            for clients in args.clients:
                runs.append(load(port, pairs, clients, per_request, args.requests, args.time_limit))
                print(json.dumps(runs[-1]), flush=True)
        rss = peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=60)
    most_pairs = max(r["requests"] * r["pairs_per_request"] for r in runs)
    reference = offline(args.model, args.backend, pairs[: max(most_pairs, 256)])
    for run in runs:
        run["x_offline"] = round(run["pairs_per_s"] / reference["pairs_per_s"], 2)
    result = {"machine": machine_facts(), "model": args.model or "default", "backend": args.backend,
              "server_peak_rss_mb": round(rss),
              "offline_stance_score": reference, "runs": runs, "cpus": os.cpu_count()}  # fmt: skip
    output = Path(args.output)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"server peak RSS {rss:.0f} MB; offline `stance score` {reference['pairs_per_s']} pairs/s "
          f"({reference['pairs']} pairs, whole command)")  # fmt: skip
    print("| clients | pairs/request | requests | pairs/s | x offline | p50 ms | p99 ms | errors |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        print(f"| {r['clients']} | {r['pairs_per_request']} | {r['requests']} | {r['pairs_per_s']} | {r['x_offline']} | "
              f"{r['p50_ms']} | {r['p99_ms']} | {r['errors']} |")  # fmt: skip
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
