"""Throughput and memory: stance's scorer (each backend) vs. transformers pipeline and CrossEncoder.

Same model (the embedded default unless --model names another, e.g. fast; saved as a full
directory so every peer can load it), same rows, same truncation
length, batch 32, tokenisation included, each system in its own subprocess so peak RSS is
its own. Reports pairs/s, the ratio to the pipeline, peak RSS, label agreement with the
stance torch fp32 reference, and macro-F1 on the rows' gold labels.

    python benchmarks/throughput.py                      # short (SICK) and article (FNC-1) pairs
    python benchmarks/throughput.py --memory             # RSS of streaming 10k vs 1M generated rows
    python benchmarks/throughput.py --whole-process      # whole commands, start-up included
    python benchmarks/throughput.py --device cuda --batch-size 128 --tile 10 \
        --systems pipeline crossencoder crossencoder-bf16 stance-torch   # on a GPU (rows repeated 10x)
Prints a table and writes benchmarks/results/throughput.json (memory.json for --memory,
whole_process.json for --whole-process; --output names another file).

The default mode measures the scoring loop inside a warm process (model loaded, one
warm-up batch). ``--whole-process`` measures what a user waits for: each system is one
command run from a shell on a Parquet file (start-up, imports, model loading, reading
and writing included), median of ``--repeats`` runs, with the child's peak RSS.
``stance-as-typed`` is the README's command with no flags: for the default model that loads
the adapter onto its base (the others time the merged copy) with ``--backend auto``, and reads
the merged weights its first run cached (``first_run_seconds`` is that first run, which merges
and writes them; the cache is a scratch folder of this benchmark). ``stance-as-typed-uncached``
is the same command with ``STANCE_MERGED_CACHE=0``: the adapter merged on every run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("STANCE_DATA_DIR", REPO.parent / "shared" / "data"))
CACHE = REPO / "benchmarks" / ".cache"
SYSTEMS = (
    "pipeline", "crossencoder", "crossencoder-bf16", "stance-torch", "stance-torch-bf16", "stance-onnx", "stance-onnx-int8",
)  # fmt: skip
WORKLOADS = {
    "short": {"file": "sick/test.jsonl", "rows": 2000, "max_length": 128},
    "articles": {"file": "fnc1/dev.jsonl", "rows": 300, "max_length": 256},
}


def load_rows(workload: str, tile: int = 1) -> tuple[list[str], list[str], list[str]]:
    """The workload's rows, repeated ``tile`` times (a GPU scores 2,000 short pairs in well under a
    second: too short to time)."""
    spec = WORKLOADS[workload]
    premises, hypotheses, labels = [], [], []
    with open(DATA / spec["file"], encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            premises.append(row["premise"])
            hypotheses.append(row["hypothesis"])
            labels.append(row["label"])
            if len(premises) == spec["rows"]:
                break
    return premises * tile, hypotheses * tile, labels * tile


def full_model_dir(model: str = "default") -> Path:
    """``model`` (a name such as default or fast, or a directory) merged and saved as a plain
    directory that every peer can load; cached under a key of its files' hashes, so a changed
    model is never timed through a stale copy."""
    from stance.model import StanceClassifier
    from stance.model.loading import model_fingerprint, resolve_model_source

    source = resolve_model_source(model)
    key = hashlib.sha256(json.dumps(model_fingerprint(source), sort_keys=True).encode()).hexdigest()[:12]
    target = CACHE / f"full-{Path(source).name}-{key}"
    if not (target / "model.safetensors").exists():
        StanceClassifier.from_pretrained(source, device="cpu").save_pretrained(target)
    return target


def worker(system: str, workload: str, model_dir: str, out: str, device: str, batch_size: str, tile: str) -> None:
    """Run one system on one workload; writes timings and probabilities (canonical order) to ``out``.

    Each system runs at its own default precision on ``device`` (stance: bf16 autocast on CUDA;
    the pipeline and CrossEncoder: fp32), except ``crossencoder-bf16`` (weights loaded in bf16).
    On CUDA the ``agreement_with_fp32`` column compares with stance-torch, which is bf16 there.
    """
    import torch

    from stance.model import LABELS

    batch_size, tile = int(batch_size), int(tile)
    premises, hypotheses, _ = load_rows(workload, tile)
    max_length = WORKLOADS[workload]["max_length"]
    pairs = list(zip(premises, hypotheses, strict=True))
    if system == "pipeline":
        from transformers import pipeline

        pipe = pipeline("text-classification", model=model_dir, device=0 if device == "cuda" else -1, top_k=None)
        inputs = [{"text": p, "text_pair": h} for p, h in pairs]

        def run(batch):
            outputs = pipe(batch, batch_size=batch_size, truncation=True, max_length=max_length)
            return np.array([[{d["label"]: d["score"] for d in o}[label] for label in LABELS] for o in outputs])

        run(inputs[:32])
        started = time.perf_counter()
        probabilities = run(inputs)
    elif system.startswith("crossencoder"):
        from sentence_transformers import CrossEncoder

        kwargs = {"model_kwargs": {"dtype": torch.bfloat16}} if system == "crossencoder-bf16" else {}
        encoder = CrossEncoder(model_dir, device=device, max_length=max_length, **kwargs)
        order = [encoder.model.config.label2id[label] for label in LABELS]

        def run(batch):
            logits = encoder.predict(batch, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=False)
            logits = torch.stack(list(logits)) if isinstance(logits, list) else torch.as_tensor(logits)
            return torch.softmax(logits.detach().to("cpu", torch.float64), -1).numpy()[:, order]

        run(pairs[:32])
        started = time.perf_counter()
        probabilities = run(pairs)
    else:
        from stance.model import StanceClassifier

        backend = system.removeprefix("stance-")
        classifier = StanceClassifier.from_pretrained(model_dir, device=device, backend=backend, max_length=max_length)
        classifier.predict(pairs[:32])
        started = time.perf_counter()
        probabilities = classifier.predict(pairs, batch_size=batch_size).probabilities
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    np.save(out + ".npy", probabilities)
    Path(out + ".json").write_text(json.dumps({"seconds": seconds, "rows": len(pairs), "peak_rss_mb": peak_rss_mb()}))


def machine_facts() -> dict:
    """The CPU the numbers were measured on: int8 and fp32 speed depend on its vector units
    (AVX2 only vs. AVX-512 / VNNI / AMX), so tables from different machines do not compare."""
    facts = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                         check=False) if shutil.which("nvidia-smi") else None  # fmt: skip
    if gpu is not None and gpu.returncode == 0:
        facts["gpus"] = gpu.stdout.split("\n")[:-1]
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return facts
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), None)
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "avx512_bf16")
    return facts | {"cpu_model": model, "simd": [flag for flag in wanted if flag in flags]}


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM). Not ru_maxrss: Linux carries that over
    from the parent across fork+exec, so every child would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_worker(
    system: str, workload: str, model_dir: Path, scratch: Path, device: str, batch_size: int, tile: int
) -> tuple[dict, np.ndarray]:
    out = str(scratch / f"{system}-{workload}")
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "true", "TRANSFORMERS_VERBOSITY": "error"}
    command = [sys.executable, __file__, "--worker", system, workload, str(model_dir), out, device]
    subprocess.run(command + [str(batch_size), str(tile)], check=True, env=env)
    return json.loads(Path(out + ".json").read_text()), np.load(out + ".npy")


def throughput(
    systems: list[str],
    workloads: list[str],
    model: str = "default",
    *,
    device: str = "cpu",
    batch_size: int = 32,
    tile: int = 1,
) -> dict:
    """Warm-loop pairs/s of each system on each workload (rows repeated ``tile`` times)."""
    from stance.eval.metrics import classification_metrics
    from stance.model import LABEL2ID, StanceClassifier

    model_dir = full_model_dir(model)
    for backend in ("onnx", "onnx-int8"):  # build the cached exports outside the timed runs
        if f"stance-{backend}" in systems:
            StanceClassifier.from_pretrained(model_dir, device="cpu", backend=backend)
    results = {"machine": machine_facts(), "device": device, "batch_size": batch_size, "tile": tile, "runs": []}
    with tempfile.TemporaryDirectory() as scratch:
        for workload in workloads:
            _, _, gold = load_rows(workload, tile)
            gold_ids = [LABEL2ID[g] for g in gold]
            outputs = {
                system: run_worker(system, workload, model_dir, Path(scratch), device, batch_size, tile)
                for system in systems
            }
            reference = outputs["stance-torch"][1].argmax(1) if "stance-torch" in outputs else None
            base = outputs["pipeline"][0] if "pipeline" in outputs else None
            for system, (timing, probabilities) in outputs.items():
                predicted = probabilities.argmax(1)
                rate = timing["rows"] / timing["seconds"]
                results["runs"].append(
                    {
                        "workload": workload,
                        "max_length": WORKLOADS[workload]["max_length"],
                        "system": system,
                        "rows": timing["rows"],
                        "pairs_per_s": round(rate, 1),
                        "vs_pipeline": round(rate / (base["rows"] / base["seconds"]), 2) if base else None,
                        "peak_rss_mb": round(timing["peak_rss_mb"], 1),
                        "agreement_with_fp32": round(float((predicted == reference).mean()), 4)
                        if reference is not None
                        else None,
                        "macro_f1": round(classification_metrics(gold_ids, predicted)["macro_f1"], 4),
                    }
                )
    return results


def memory(rows_list: list[int]) -> dict:
    """Peak RSS of `stance score` streaming generated inputs of several sizes (tiny random model)."""
    sys.path.insert(0, str(REPO))
    from tests.conftest import build_tiny_model_dir

    results = {"runs": []}
    with tempfile.TemporaryDirectory() as scratch:
        model = build_tiny_model_dir(Path(scratch) / "tiny")
        words = "the man dog is playing not running in park a woman kids guitar".split()
        rng = np.random.default_rng(0)
        for rows in rows_list:
            source = Path(scratch) / f"in-{rows}.jsonl"
            with open(source, "w") as handle:
                for i in range(rows):
                    premise = " ".join(rng.choice(words, size=12))
                    handle.write(
                        json.dumps({"id": i, "premise": premise, "hypothesis": " ".join(rng.choice(words, size=5))})
                        + "\n"
                    )
            started = time.perf_counter()
            stance = str(Path(sys.executable).with_name("stance"))
            command = [
                stance,
                "score",
                "--model",
                str(model),
                "--input",
                str(source),
                "--output",
                str(Path(scratch) / f"out-{rows}.jsonl"),
                "--no-progress",
            ]
            measured = subprocess.run(
                ["/usr/bin/time", "-f", "%M", *command], capture_output=True, text=True, check=True
            )
            peak_mb = int(measured.stderr.strip().splitlines()[-1]) / 1024
            results["runs"].append(
                {"rows": rows, "peak_rss_mb": round(peak_mb, 1), "seconds": round(time.perf_counter() - started, 1)}
            )
            print(f"{rows:>9,} rows: peak RSS {peak_mb:7.1f} MB in {results['runs'][-1]['seconds']} s", flush=True)
            source.unlink()
    first, last = results["runs"][0], results["runs"][-1]
    results["growth_mb"] = round(last["peak_rss_mb"] - first["peak_rss_mb"], 1)
    return results


PIPELINE_SCRIPT = """
import sys, pandas as pd
from transformers import pipeline
model, source, target, max_length = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
frame = pd.read_parquet(source)
pipe = pipeline("text-classification", model=model, device=-1)
inputs = [{"text": p, "text_pair": h} for p, h in zip(frame.premise, frame.hypothesis)]
out = pipe(inputs, batch_size=32, truncation=True, max_length=max_length)
frame.assign(label=[o["label"] for o in out], score=[o["score"] for o in out]).to_parquet(target)
"""
WHOLE_SYSTEMS = (
    "pipeline-script",
    "stance-as-typed",  # the README's command: no --backend, and for the default no --model (its adapter)
    "stance-as-typed-uncached",  # the same, merging the adapter on every run (STANCE_MERGED_CACHE=0)
    "stance-torch",
    "stance-torch-bf16",
    "stance-onnx",
    "stance-onnx-int8",
)


def whole_process_inputs(scratch: Path, sizes: list[int], articles: int) -> dict[str, Path]:
    """Parquet inputs: ``short-N`` pairs cycled from SICK test + train, ``articles-N`` from FNC-1 dev."""
    import pandas as pd

    short = []
    for name in ("sick/test.jsonl", "sick/train.jsonl"):
        with open(DATA / name, encoding="utf-8") as handle:
            short += [json.loads(line) for line in handle]
    files = {}
    for size in sizes:
        rows = [short[i % len(short)] for i in range(size)]
        frame = pd.DataFrame({"id": range(size), "premise": [r["premise"] for r in rows],
                              "hypothesis": [r["hypothesis"] for r in rows]})  # fmt: skip
        files[f"short-{size}"] = scratch / f"short-{size}.parquet"
        frame.to_parquet(files[f"short-{size}"])
    if articles:
        with open(DATA / "fnc1" / "dev.jsonl", encoding="utf-8") as handle:
            rows = [json.loads(line) for _, line in zip(range(articles), handle, strict=False)]
        frame = pd.DataFrame({"id": range(len(rows)), "premise": [r["premise"] for r in rows],
                              "hypothesis": [r["hypothesis"] for r in rows]})  # fmt: skip
        files[f"articles-{len(rows)}"] = scratch / f"articles-{len(rows)}.parquet"
        frame.to_parquet(files[f"articles-{len(rows)}"])
    return files


def timed_command(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one command, via GNU time's %M (the child's own peak)."""
    with tempfile.NamedTemporaryFile(suffix=".time") as report:
        started = time.perf_counter()
        subprocess.run(["/usr/bin/time", "-o", report.name, "-f", "%M", *command], check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        wall = time.perf_counter() - started
        return wall, int(Path(report.name).read_text().split()[-1]) / 1024


def whole_process(systems: list[str], sizes: list[int], articles: int, repeats: int, model: str = "default") -> dict:
    """Each system as a user runs it, on each input; median wall time of ``repeats`` runs."""
    import pandas as pd

    from stance.model import StanceClassifier

    model_dir = full_model_dir(model)
    max_length = StanceClassifier.from_pretrained(model_dir, device="cpu").max_length
    stance = str(Path(sys.executable).with_name("stance"))
    for quantize in (False, True):  # exports are built once, before timing (as `stance export` does)
        subprocess.run([stance, "export", "--model", str(model_dir)] + (["--int8"] if quantize else []), check=True)
    results: dict = {"mode": "whole process", "model": str(model_dir), "max_length": max_length, "runs": []}
    results["machine"] = machine_facts()
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        cached_env = os.environ | {"STANCE_MERGED_CACHE": str(scratch / "merged")}
        uncached_env = os.environ | {"STANCE_MERGED_CACHE": "0"}
        for workload, source in whole_process_inputs(scratch, sizes, articles).items():
            labels: dict[str, list] = {}
            for system in systems:
                target = scratch / f"{system}-{workload}.parquet"
                if system == "pipeline-script":
                    command = [sys.executable, "-c", PIPELINE_SCRIPT, str(model_dir), str(source), str(target),
                               str(max_length)]  # fmt: skip
                elif system.startswith("stance-as-typed"):  # loads the adapter onto its base, as users do
                    typed_model = [] if model == "default" else ["--model", str(model)]
                    command = [stance, "score", *typed_model, "--input", str(source), "--output", str(target),
                               "--no-progress"]  # fmt: skip
                else:
                    command = [stance, "score", "--model", str(model_dir), "--backend", system.removeprefix("stance-"),
                               "--input", str(source), "--output", str(target), "--no-progress"]  # fmt: skip
                env = uncached_env if system == "stance-as-typed-uncached" else cached_env
                first = None
                if system == "stance-as-typed" and not (scratch / "merged").exists():
                    first = timed_command(command, env)  # merges and writes the cache: a user's first run
                timings = []
                for _ in range(repeats):
                    target.unlink(missing_ok=True)
                    timings.append(timed_command(command, env))
                walls = sorted(t[0] for t in timings)
                labels[system] = pd.read_parquet(target)["label"].tolist()
                results["runs"].append({
                    "workload": workload, "system": system, "median_seconds": round(walls[len(walls) // 2], 2),
                    "all_seconds": [round(t[0], 2) for t in timings], "peak_rss_mb": round(max(t[1] for t in timings)),
                })  # fmt: skip
                if first is not None:
                    results["runs"][-1] |= {
                        "first_run_seconds": round(first[0], 2),
                        "first_run_rss_mb": round(first[1]),
                    }
            reference = labels.get("stance-torch")
            for run in results["runs"]:
                if run["workload"] != workload:
                    continue
                pipeline_run = next((r for r in results["runs"] if r["workload"] == workload
                                     and r["system"] == "pipeline-script"), None)  # fmt: skip
                run["x_pipeline"] = (
                    round(pipeline_run["median_seconds"] / run["median_seconds"], 2) if pipeline_run else None
                )
                if reference is not None:
                    same = np.mean([a == b for a, b in zip(labels[run["system"]], reference, strict=True)])
                    run["label_agreement_with_torch"] = round(float(same), 4)
    return results


def render_whole_process(results: dict) -> str:
    lines = [
        "| input | system | median wall s | x pipeline script | peak RSS MB | labels = torch fp32 |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in results["runs"]:
        ratio = f"{r['x_pipeline']:.2f}" if r.get("x_pipeline") else "-"
        agreement = r.get("label_agreement_with_torch")
        first = f" (first run {r['first_run_seconds']:.2f})" if "first_run_seconds" in r else ""
        lines.append(f"| {r['workload']} | {r['system']} | {r['median_seconds']:.2f}{first} | {ratio} | {r['peak_rss_mb']} | "
                     f"{'-' if agreement is None else f'{agreement:.4f}'} |")  # fmt: skip
    return "\n".join(lines)


def render(results: dict) -> str:
    lines = [
        "| workload | max len | system | pairs/s | x pipeline | peak RSS MB | agreement w/ fp32 | macro-F1 |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in results["runs"]:
        lines.append(
            f"| {r['workload']} | {r['max_length']} | {r['system']} | {r['pairs_per_s']:.1f} | {r['vs_pipeline']:.2f} | "
            f"{r['peak_rss_mb']:.0f} | {r['agreement_with_fp32']:.4f} | {r['macro_f1']:.4f} |"
        )
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(*sys.argv[2:9])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", nargs="*", default=list(SYSTEMS), choices=SYSTEMS)
    parser.add_argument("--workloads", nargs="*", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--memory", action="store_true", help="measure RSS on generated inputs instead")
    parser.add_argument("--memory-rows", nargs="*", type=int, default=[10_000, 1_000_000])
    parser.add_argument("--whole-process", action="store_true", help="time whole commands, start-up included")
    parser.add_argument("--whole-systems", nargs="*", default=list(WHOLE_SYSTEMS), choices=WHOLE_SYSTEMS)
    parser.add_argument("--sizes", nargs="*", type=int, default=[1, 2000, 20000], help="short-pair input sizes")
    parser.add_argument("--articles", type=int, default=1000, help="FNC-1 articles (0: none)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="default", help="model to time: default, fast, or a directory")
    parser.add_argument("--output", type=Path, help="JSON file to write (default: by mode, in benchmarks/results/)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the warm loop runs")
    parser.add_argument("--batch-size", type=int, default=32, help="pairs per forward pass, every system")
    parser.add_argument("--tile", type=int, default=1, help="repeat each workload's rows this many times")
    args = parser.parse_args()
    if args.device == "cuda" and any(system.startswith("stance-onnx") for system in args.systems):
        parser.error("--device cuda times the torch systems only; leave the stance-onnx* systems out")
    if args.whole_process:
        results = whole_process(args.whole_systems, args.sizes, args.articles, args.repeats, args.model)
        path = REPO / "benchmarks" / "results" / "whole_process.json"
        print(render_whole_process(results))
    elif args.memory:
        results = memory(args.memory_rows)
        path = REPO / "benchmarks" / "results" / "memory.json"
        print(f"RSS growth from {args.memory_rows[0]:,} to {args.memory_rows[-1]:,} rows: {results['growth_mb']} MB")
    else:
        results = throughput(
            args.systems, args.workloads, args.model, device=args.device, batch_size=args.batch_size, tile=args.tile
        )
        path = REPO / "benchmarks" / "results" / "throughput.json"
        print(render(results))
    path = args.output or path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
