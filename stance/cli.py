"""The ``stance`` command: parses arguments and calls model/, training/, eval/.

No logic lives here. User errors (:class:`StanceError`) print one line and exit 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from stance.model.errors import StanceError

log = logging.getLogger("stance")


def _key_values(items: Sequence[str] | None, flag: str) -> dict[str, str] | None:
    if not items:
        return None
    mapping = {}
    for item in items:
        if "=" not in item:
            raise StanceError(f"{flag} {item!r}: expected SOURCE=TARGET, e.g. {flag} agree=support")
        key, value = item.split("=", 1)
        mapping[key.strip()] = value.strip()
    return mapping


MODEL_HELP = (
    "model directory, hub id, or fast (the MiniLM: 4-7x faster per pair, less accurate) "
    "(default: the embedded default model, all-mpnet-base-v2 + LoRA)"
)
# classifier.BACKENDS plus "auto", spelt out so that --help imports nothing (a test keeps them equal).
BACKEND_CHOICES = ("auto", "torch", "torch-bf16", "onnx", "onnx-int8")
BACKEND_HELP = (
    "auto (default): the model's fp32 ONNX export where `stance export` built one and the work is on the CPU, "
    "for up to 256 pairs in 64 KiB or on a CPU without bf16 instructions (it starts without torch); else torch-bf16 on a "
    "CPU with bf16 instructions (AVX512-BF16 or AMX), else torch; "
    "torch: fp32 on the CPU, bf16 autocast on CUDA; torch-bf16: bf16 weights, about 2x faster than fp32 "
    "on such a CPU (slower without), labels as fp32's on nearly every pair; onnx: ONNX Runtime, as fp32; "
    "onnx-int8: the fastest CPU path, moves more labels (ONNX files built once, cached next to the model)"
)


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=None,
        help=MODEL_HELP,
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ... (default: auto)")
    parser.add_argument("--max-length", type=int, default=None, help="tokens per pair (default: the model's)")
    parser.add_argument(
        "--checkpoint-label-map",
        nargs="*",
        metavar="NAME=LABEL",
        help="map anonymous checkpoint labels, e.g. LABEL_0=contradict",
    )
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="allow custom model code from the hub (off by default)"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="most pairs per forward pass (default: 32)")
    parser.add_argument("--backend", choices=BACKEND_CHOICES, default="auto", help=BACKEND_HELP)
    parser.add_argument(
        "--long-text",
        choices=("truncate", "window", "evidence"),
        default=None,
        help="how premises over max length are handled: cut, overlapping windows, or the sentences that "
        "bear on the hypothesis (default: the model's)",
    )
    parser.add_argument(
        "--evidence-ranker",
        choices=("lexical", "embedding"),
        default=None,
        help="evidence mode: rank sentences by BM25 (lexical) or MiniLM similarity (default: the model's)",
    )
    parser.add_argument(
        "--symmetric",
        action="store_true",
        help="score both orders and average the probabilities (order-independent answers; on the default "
        "model's statement dev sets it lowers macro-F1, see model/default/README.md)",
    )
    parser.add_argument("--premise-column", default="premise")
    parser.add_argument(
        "--output-prefix",
        default="",
        help="prefix for added columns, e.g. pred_ (needed when the input has a label column)",
    )
    parser.add_argument("--hypothesis-column", default="hypothesis")


def _classifier_options(args: argparse.Namespace) -> dict:
    """Keyword arguments of ``StanceClassifier.from_pretrained`` (model aside) from the CLI flags."""
    return {
        "device": args.device,
        "label_map": _key_values(args.checkpoint_label_map, "--checkpoint-label-map"),
        "trust_remote_code": args.trust_remote_code,
        "max_length": args.max_length,
        "backend": args.backend,
    }


def _quiet_transformers(args: argparse.Namespace) -> None:
    """Silence transformers' info logs and load bars unless --verbose (imports transformers)."""
    if getattr(args, "quiet", True):
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()


def _load_classifier(args: argparse.Namespace, pairs: int | None = None):
    """Load the model the flags name. ``pairs``: how many pairs the command will score, where
    known (None: many, or unknown), for --backend auto's choice of a built ONNX export."""
    from stance.model.classifier import ONNX_BACKENDS, StanceClassifier, auto_prefers_onnx, export_runs_without_torch

    options = _classifier_options(args)
    torch_free = args.backend == "auto" and auto_prefers_onnx(args.model, args.device, pairs)
    if torch_free:
        options["backend"] = "onnx"  # the built fp32 export: starts without torch (auto_prefers_onnx)
    else:
        torch_free = options["backend"] in ONNX_BACKENDS and export_runs_without_torch(args.model, options["backend"])
    if not torch_free:
        _quiet_transformers(args)
    classifier = StanceClassifier.from_pretrained(args.model, **options)
    if getattr(args, "evidence_ranker", None):
        classifier.metadata.evidence_ranker = args.evidence_ranker
    return classifier


def _score_options(args: argparse.Namespace) -> dict:
    """How each pair is scored and named (shared by the local and the Ray engine)."""
    return {
        "premise_column": args.premise_column,
        "hypothesis_column": args.hypothesis_column,
        "batch_size": args.batch_size,
        "symmetric": args.symmetric,
        "long_text": args.long_text,
        "prefix": args.output_prefix,
        "abstain_threshold": args.abstain_threshold,
    }


def _version() -> str:
    from stance import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``stance`` command."""
    parser = argparse.ArgumentParser(prog="stance", description="Label text pairs as support, contradict or neutral.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    parser.add_argument("--version", action="version", version=f"stance {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="fine-tune a model from a YAML recipe")
    train.add_argument("--config", required=True, help="YAML recipe, e.g. configs/sick.yaml")
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe value, e.g. training.learning_rate=3e-5",
    )
    train.add_argument(
        "--dry-run", action="store_true", help="check the recipe and data, print the resolved recipe and a data summary"
    )

    predict = commands.add_parser("predict", help="label one pair from the shell: stance predict PREMISE HYPOTHESIS")
    predict.add_argument("premise")
    predict.add_argument("hypothesis")
    predict.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    _add_model_options(predict)

    score = commands.add_parser("score", help="score a JSONL/CSV/Parquet file of pairs")
    _add_model_options(score)
    score.add_argument(
        "--input",
        required=True,
        help="pairs file (.jsonl, .csv or .parquet); - reads standard input (JSONL by default)",
    )
    score.add_argument(
        "--output",
        default=None,
        help="output file (same format by default); - writes to standard output; omit to print a table",
    )
    score.add_argument("--input-format", choices=("jsonl", "csv", "parquet"), default=None)
    score.add_argument(
        "--delimiter", default=None, help="field separator of a delimited input (default: tab for .tsv, else comma)"
    )
    score.add_argument("--output-format", choices=("jsonl", "csv", "parquet"), default=None)
    score.add_argument("--chunk-rows", type=int, default=4096, help="rows read and written at a time (default: 4096)")
    score.add_argument(
        "--resume", action="store_true", help="continue an interrupted run with the same input and options"
    )
    score.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="ray: Ray Data, Parquet directory/glob in, directory out",
    )
    score.add_argument("--concurrency", type=int, default=1, help="ray: actors, one model each (default: 1)")
    score.add_argument("--num-gpus", type=float, default=0, help="ray: GPUs per actor (default: 0)")
    score.add_argument(
        "--abstain-threshold",
        type=float,
        default=None,
        help="label neutral unless support or contradict reaches this probability (see stance eval's precision_coverage.png)",
    )
    score.add_argument("--cpus-per-actor", type=float, default=1, help="ray: CPUs reserved per actor (default: 1)")
    score.add_argument("--ray-batch-size", type=int, default=1024, help="ray: rows per actor batch (default: 1024)")
    score.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    score.add_argument(
        "--show",
        nargs="*",
        default=["id"],
        metavar="COLUMN",
        help="input columns to show in the printed table (default: id, when present)",
    )

    evaluate = commands.add_parser("eval", help="evaluate a model on a labelled file")
    _add_model_options(evaluate)
    evaluate.add_argument("--data", required=True, help="labelled pairs file")
    evaluate.add_argument("--output-dir", required=True, help="where metrics.json, report.md and plots go")
    evaluate.add_argument("--label-column", default="label")
    evaluate.add_argument(
        "--label-map",
        nargs="*",
        metavar="SOURCE=LABEL",
        help="map the file's labels, e.g. agree=support disagree=contradict",
    )
    evaluate.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    evaluate.add_argument(
        "--source-column", default=None, help="column naming each row's source data set (per-source metrics)"
    )
    evaluate.add_argument(
        "--abstain-threshold",
        type=float,
        default=None,
        help="say neutral unless the top non-neutral probability reaches this",
    )
    evaluate.add_argument(
        "--errors", type=int, default=20, help="most confident mistakes per class written to errors.jsonl (default: 20)"
    )
    evaluate.add_argument(
        "--compare",
        nargs="+",
        metavar="MODEL",
        default=None,
        help="evaluate several models side by side (use 'default' for the embedded one); with --model, that "
        "model comes first and the others are tested against it",
    )

    serve = commands.add_parser("serve", help="serve the model over HTTP (needs stance[serve])")
    serve.add_argument(
        "--model",
        default=None,
        help=MODEL_HELP,
    )
    serve.add_argument("--backend", choices=BACKEND_CHOICES, default="auto", help=BACKEND_HELP)
    serve.add_argument("--device", default="auto", help="auto, cpu, cuda ... (default: auto)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--api-key-file", default=None, help="file holding a bearer token that every request must send")
    serve.add_argument("--max-pairs", type=int, default=256, help="most pairs per request (default: 256)")
    serve.add_argument("--max-chars", type=int, default=100_000, help="most characters per text (default: 100000)")
    serve.add_argument("--max-body-mb", type=float, default=8.0, help="largest request body in MiB (default: 8)")
    serve.add_argument("--max-queue", type=int, default=4096, help="most pairs waiting to be scored (default: 4096)")
    serve.add_argument("--max-batch", type=int, default=128, help="most pairs merged into one scoring call")
    serve.add_argument("--max-wait-ms", type=float, default=5.0, help="how long to wait for requests to merge")
    serve.add_argument("--trust-remote-code", action="store_true", help="allow custom model code (off by default)")

    export = commands.add_parser(
        "export", help="build the ONNX export used by --backend onnx / onnx-int8 (cached next to the model)"
    )
    export.add_argument("--model", default=None, help="model directory, or fast (default: the embedded default model)")
    export.add_argument("--int8", action="store_true", help="build the int8-quantised export (--backend onnx-int8)")
    export.add_argument("--trust-remote-code", action="store_true", help="allow custom model code (off by default)")

    calibrate = commands.add_parser("calibrate", help="fit the temperature on a dev file and store it in stance.json")
    _add_model_options(calibrate)
    calibrate.add_argument(
        "--data", required=True, nargs="+", help="labelled dev file(s), pooled (never the test file)"
    )
    calibrate.add_argument("--label-column", default="label")
    calibrate.add_argument("--label-map", nargs="*", metavar="SOURCE=LABEL")
    calibrate.add_argument("--output", default=None, help="where to save the calibrated model (default: in place)")
    calibrate.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def _run_train(args: argparse.Namespace) -> int:
    import yaml

    from stance.training.config import load_config
    from stance.training.data import data_summary, prepare_data

    config = load_config(args.config, args.overrides)
    # Recipe and data are checked before torch is imported: a typo costs a second, not twenty.
    prepared = prepare_data(config)
    print(data_summary(prepared), flush=True)
    if args.dry_run:
        print("\n# resolved recipe\n" + yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
        return 0
    _quiet_transformers(args)
    from stance.training.trainer import train  # imports torch

    output = train(config, prepared)
    print(f"saved model to {output}")
    return 0


def _check_common_options(args: argparse.Namespace) -> None:
    """Validate numeric options before any model is loaded or any row is read."""
    if getattr(args, "batch_size", 1) < 1:
        raise StanceError(f"--batch-size must be >= 1, got {args.batch_size}")
    if getattr(args, "max_length", None) is not None and args.max_length < 8:
        raise StanceError(f"--max-length must be >= 8, got {args.max_length}")
    threshold = getattr(args, "abstain_threshold", None)
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise StanceError(f"--abstain-threshold must be between 0 and 1, got {threshold}")


def _check_model_argument(model: str | None) -> None:
    """A local-looking model path that does not exist is "not found" before any work starts."""
    if model in (None, "default"):
        return
    from stance.model.loading import looks_like_local_path, resolve_model_source

    source = resolve_model_source(model)
    if looks_like_local_path(source) and not Path(source).expanduser().exists():
        raise StanceError(f"{model}: model directory not found")


def _run_predict(args: argparse.Namespace) -> int:
    import json

    _check_common_options(args)
    _check_model_argument(args.model)
    classifier = _load_classifier(args, pairs=2 if args.symmetric else 1)
    result = classifier.predict([(args.premise, args.hypothesis)], symmetric=args.symmetric, long_text=args.long_text)
    probabilities = dict(zip(("support", "contradict", "neutral"), map(float, result.probabilities[0]), strict=True))
    if args.json:
        print(json.dumps({"label": result.labels[0], **{f"prob_{k}": v for k, v in probabilities.items()},
                          "truncated": bool(result.truncated[0])}))  # fmt: skip
    else:
        scores = "  ".join(f"{label} {value:.3f}" for label, value in probabilities.items())
        note = "  (premise truncated: try --long-text evidence)" if result.truncated[0] else ""
        print(f"{result.labels[0]}  ({scores}){note}")
    if backend_note := _backend_note(args, classifier):  # stderr: --json output stays one JSON line
        print(backend_note.strip(" ()"), file=sys.stderr)
    return 0


def _run_score(args: argparse.Namespace) -> int:
    _check_common_options(args)
    if args.chunk_rows < 1:
        raise StanceError(f"--chunk-rows must be >= 1, got {args.chunk_rows}")
    if args.engine != "ray":
        ray_only = [flag for flag, value, default in (("--num-gpus", args.num_gpus, 0), ("--concurrency",
                    args.concurrency, 1), ("--cpus-per-actor", args.cpus_per_actor, 1), ("--ray-batch-size",
                    args.ray_batch_size, 1024)) if value != default]  # fmt: skip
        if ray_only:
            raise StanceError(f"{', '.join(ray_only)} only apply with --engine ray")
    elif args.concurrency < 1 or args.num_gpus < 0 or args.cpus_per_actor <= 0 or args.ray_batch_size < 1:
        raise StanceError("--concurrency and --ray-batch-size must be >= 1, --num-gpus >= 0, --cpus-per-actor > 0")
    _check_model_argument(args.model)
    if args.engine == "ray":
        return _run_score_ray(args)
    pairs_of_files = _input_output_pairs(args)
    classifier = _load_classifier(args, _pairs_to_score(args, [source for source, _ in pairs_of_files]))
    options = _score_options(args)
    if args.output is None:
        from stance.model.scoring import score_frame
        from stance.model.tables import read_table, require_columns

        stdin = args.input in ("-", "/dev/stdin")
        frame = read_table("/dev/stdin" if stdin else args.input, args.input_format or ("jsonl" if stdin else None))
        require_columns(frame, {"premise": args.premise_column, "hypothesis": args.hypothesis_column}, args.input)
        missing = [c for c in args.show if c not in frame.columns and c != "id"]
        if missing:
            raise StanceError(
                f"{args.input}: --show column(s) {missing} not found; the file has columns {list(map(str, frame.columns))}"
            )
        shown = [c for c in args.show if c in frame.columns]
        print(
            format_table(
                score_frame(classifier, frame, **options),
                args.premise_column,
                args.hypothesis_column,
                args.output_prefix,
                shown,
            )
        )
        if note := _backend_note(args, classifier):
            print(note.strip(" ()"), file=sys.stderr)
        return 0
    for source, target in pairs_of_files:
        output = classifier.score_file(
            source,
            target,
            input_format=args.input_format,
            output_format=args.output_format,
            chunk_rows=args.chunk_rows,
            resume=args.resume,
            progress=not args.no_progress,
            delimiter=args.delimiter,
            **options,
        )
        if str(output) != "/dev/stdout":
            print(f"wrote {output}{_backend_note(args, classifier)}", file=sys.stderr)
    return 0


def _pairs_to_score(args: argparse.Namespace, inputs: list[str]) -> int | None:
    """The forward passes ``inputs`` need when few enough to matter to --backend auto (see
    ``auto_prefers_onnx``): at most ``AUTO_ONNX_MAX_PAIRS`` of them in at most
    ``AUTO_ONNX_MAX_BYTES``; else None. A stream (stdin, a pipe) is None and is not read.
    Reads no further than that limit; --symmetric counts each pair twice."""
    from stance.model.scoring import is_stream

    if args.backend != "auto" or any(is_stream(source) for source in inputs):
        return None
    from stance.model.classifier import AUTO_ONNX_MAX_BYTES, AUTO_ONNX_MAX_PAIRS
    from stance.model.tables import rows_at_most

    try:  # long texts cost more a pair: a large file is "many" whatever its rows
        if sum(os.stat(source).st_size for source in inputs) > AUTO_ONNX_MAX_BYTES:
            return None
    except OSError:
        return None  # the reader reports a missing file
    passes = 2 if args.symmetric else 1
    total = 0
    for source in inputs:
        rows = rows_at_most(source, (AUTO_ONNX_MAX_PAIRS - total) // passes, args.input_format)
        if rows is None:
            return None
        total += rows * passes
    return total


def _backend_note(args: argparse.Namespace, classifier) -> str:
    """Text naming the backend when --backend auto chose other than fp32 torch, so nobody takes
    bf16 weights for fp32, or wonders why a command started without torch."""
    if args.backend == "auto" and classifier.backend == "onnx":
        return (
            " (backend onnx: the model's built fp32 ONNX export, chosen by --backend auto; --backend torch for torch)"
        )
    if args.backend == "auto" and classifier.backend != "torch":
        return f" (backend {classifier.backend}, chosen by --backend auto on this CPU; --backend torch for exact fp32)"
    return ""


def _input_output_pairs(args: argparse.Namespace) -> list[tuple[str, str | None]]:
    """(input, output) per file: one pair, or for a directory or glob one output per input in
    the --output directory, named after the input (a documented, predictable mapping)."""
    import glob

    text = args.input
    is_many = Path(text).is_dir() or (any(c in text for c in "*?[") and not Path(text).exists())
    if not is_many:
        return [(text, args.output)]
    if Path(text).is_dir():
        suffixes = (".jsonl", ".json", ".ndjson", ".csv", ".tsv", ".parquet", ".pq")
        inputs = sorted(str(p) for p in Path(text).iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    else:
        inputs = sorted(p for p in glob.glob(text, recursive=True) if Path(p).is_file())
    if not inputs:
        raise StanceError(f"{text}: no input files found (expected .jsonl, .csv, .tsv or .parquet files)")
    if args.output is None or args.output == "-":
        raise StanceError(f"{text}: {len(inputs)} input files: pass --output DIR (one output per input, same name)")
    out_dir = Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        raise StanceError(f"{out_dir}: several inputs need an output directory, and this is a file")
    targets = []
    for source in inputs:
        suffix = {"jsonl": ".jsonl", "csv": ".csv", "parquet": ".parquet"}.get(args.output_format, Path(source).suffix)
        targets.append(str(out_dir / (Path(source).stem + suffix)))
    clashes = sorted({t for t in targets if targets.count(t) > 1})
    if clashes:
        raise StanceError(f"inputs with the same name would write the same output: {clashes[:3]}; score them apart")
    out_dir.mkdir(parents=True, exist_ok=True)
    return list(zip(inputs, targets, strict=True))


def _run_score_ray(args: argparse.Namespace) -> int:
    from stance.model.ray_engine import score_parquet

    if args.output is None:
        raise StanceError("--engine ray writes Parquet files: pass --output DIR")
    options = _score_options(args)
    classifier_options = _classifier_options(args)
    if args.device == "auto":  # an actor uses the GPU only when Ray gives it one
        classifier_options["device"] = "cuda" if args.num_gpus else "cpu"
    if args.backend == "auto":
        # Each actor would resolve auto on its own node, and a cluster whose CPUs differ would
        # write bf16 and fp32 rows into one output: under Ray, auto is exact fp32 (autocast on GPUs).
        classifier_options["backend"] = "torch"
    output = score_parquet(
        args.input,
        args.output,
        args.model,
        concurrency=args.concurrency,
        num_gpus=args.num_gpus,
        num_cpus=args.cpus_per_actor,
        batch_size=args.ray_batch_size,
        model_batch_size=options.pop("batch_size"),
        **options,
        **classifier_options,
    )
    print(f"wrote {output} (backend {classifier_options['backend']})", file=sys.stderr)
    return 0


def format_table(
    scored, premise_column: str, hypothesis_column: str, prefix: str = "", show: Sequence[str] = (), width: int = 44
) -> str:
    """A plain-text table of scored pairs for the terminal (long texts shown with an ellipsis)."""

    def cut(text: object, size: int = width) -> str:
        text = " ".join(str(text).split()) if isinstance(text, str) else "(missing)" if text is None else str(text)
        return text if len(text) <= size else text[: size - 1] + "…"

    extra_width = {
        column: max(len(column), *(len(cut(v, 24)) for v in scored[column])) if len(scored) else len(column)
        for column in show
    }
    lead = "".join(f"{column:<{extra_width[column]}}  " for column in show)
    header = f"{lead}{'premise':<{width}}  {'hypothesis':<{width}}  {'label':<10}  support  contra  neutral"
    lines = [header, "-" * len(header)]
    for _, row in scored.iterrows():
        value = {
            name: row[prefix + name]
            for name in ("error", "label", "prob_support", "prob_contradict", "prob_neutral", "truncated")
        }
        if isinstance(value["error"], str) and value["error"]:
            scores = f"{'ERROR':<10}  {value['error']}"
        else:
            scores = f"{value['label']:<10}  {value['prob_support']:7.3f}  {value['prob_contradict']:6.3f}  {value['prob_neutral']:7.3f}"
            scores += "  (premise truncated: use --long-text window)" if value["truncated"] else ""
        lead = "".join(f"{cut(row[column], 24):<{extra_width[column]}}  " for column in show)
        lines.append(f"{lead}{cut(row[premise_column]):<{width}}  {cut(row[hypothesis_column]):<{width}}  {scores}")
    return "\n".join(lines)


def _dataset_spec(args: argparse.Namespace, path: str):
    from stance.training.config import DatasetConfig

    return DatasetConfig(
        path=path,
        premise_column=args.premise_column,
        hypothesis_column=args.hypothesis_column,
        label_column=args.label_column,
        label_map=_key_values(args.label_map, "--label-map"),
        source_column=getattr(args, "source_column", None),
    )


def _run_eval(args: argparse.Namespace) -> int:
    from stance.eval.evaluate import compare_models, evaluate_file, write_evaluation

    _check_common_options(args)
    spec = _dataset_spec(args, args.data)
    models = [args.model]
    if args.compare:  # --model, when given, is compared too, first: the reference the others are tested against
        given = [args.model] if args.model is not None else []
        models = list(dict.fromkeys(given + args.compare))
    for model in models:  # every model argument checked before any is evaluated
        _check_model_argument(model)
    folders = _unique_names([model or "default" for model in models])
    all_results = []
    for model, folder in zip(models, folders, strict=True):
        args.model = None if model in (None, "default") else model
        classifier = _load_classifier(args)
        results = evaluate_file(
            classifier,
            spec,
            batch_size=args.batch_size,
            long_text=args.long_text,
            symmetric=args.symmetric,
            progress=not args.no_progress,
            model_name=model or "default",
            command="stance " + shlex.join(sys.argv[1:]),
            abstain_threshold=args.abstain_threshold,
            n_errors=args.errors,
        )
        output_dir = Path(args.output_dir) / folder if args.compare else Path(args.output_dir)
        paths = write_evaluation(results, output_dir)
        overall = results["overall"]
        print(
            f"{model or 'default'}: macro-F1 {overall['macro_f1']:.4f}  accuracy {overall['accuracy']:.4f}  "
            f"n={overall['n']:,}{_backend_note(args, classifier)}"
        )
        for path in paths.values():
            print(f"wrote {path}")
        all_results.append(results)
    if args.compare:
        for path in compare_models(all_results, args.output_dir).values():
            print(f"wrote {path}")
    return 0


def _unique_names(models: list[str]) -> list[str]:
    """A folder name per model; two models whose safe names collide (m/x, m_x) get -2, -3..."""
    names: list[str] = []
    for model in models:
        name, suffix = _safe_name(model), 2
        while name in names:
            name = f"{_safe_name(model)}-{suffix}"
            suffix += 1
        names.append(name)
    return names


def _safe_name(model: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in model.strip("/"))[-80:]


def _run_serve(args: argparse.Namespace) -> int:
    try:
        from stance.serve import ServeLimits, serve
    except ImportError as error:
        raise StanceError(str(error)) from None
    for flag, value in (("--max-pairs", args.max_pairs), ("--max-chars", args.max_chars), ("--max-queue", args.max_queue),
                        ("--max-batch", args.max_batch), ("--port", args.port)):  # fmt: skip
        if value < 1:
            raise StanceError(f"{flag} must be >= 1, got {value}")
    if args.max_body_mb <= 0 or args.max_wait_ms < 0:
        raise StanceError("--max-body-mb must be > 0 and --max-wait-ms >= 0")
    api_key = None
    if args.api_key_file is not None:
        try:
            api_key = Path(args.api_key_file).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise StanceError(f"{args.api_key_file}: cannot read the API key ({error.strerror})") from None
        if not api_key:
            raise StanceError(f"{args.api_key_file}: the API key file is empty")
    limits = ServeLimits(
        max_pairs_per_request=args.max_pairs,
        max_chars_per_text=args.max_chars,
        max_body_bytes=int(args.max_body_mb * (1 << 20)),
        max_queue_pairs=args.max_queue,
        max_batch_pairs=args.max_batch,
        max_wait_ms=args.max_wait_ms,
    )
    args.max_length, args.checkpoint_label_map = None, None
    classifier = _load_classifier(args)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("binding %s: the server is reachable from other machines%s", args.host,
                    "" if api_key else " and has no --api-key-file")  # fmt: skip
    print(f"stance: serving {args.model or 'the default model'} on http://{args.host}:{args.port} "
          f"(docs: /docs; Ctrl-C stops after requests in flight){_backend_note(args, classifier)}",
          file=sys.stderr, flush=True)  # fmt: skip
    serve(
        classifier, host=args.host, port=args.port, limits=limits, api_key=api_key, model_name=args.model or "default"
    )
    return 0


def _run_export(args: argparse.Namespace) -> int:
    import time

    from stance.model.classifier import StanceClassifier
    from stance.model.loading import DEFAULT_MODEL_DIR, resolve_model_source
    from stance.model.onnx_backend import build_onnx, find_export, probe_inputs

    source = Path(resolve_model_source(args.model or DEFAULT_MODEL_DIR))
    if not source.is_dir():
        raise StanceError(f"{args.model}: not a local model directory; download or save it first, then export it")
    existing = find_export(source, quantize=args.int8)
    if existing is not None:
        print(f"up to date: {existing}")
        return 0
    started = time.perf_counter()
    _quiet_transformers(args)
    classifier = StanceClassifier.from_pretrained(source, device="cpu", trust_remote_code=args.trust_remote_code)
    with_types = "token_type_ids" in classifier.tokenizer.model_input_names
    path = build_onnx(
        classifier.model, source, args.int8, with_types, probes=probe_inputs(classifier.tokenizer, with_types)
    )
    print(f"built {path} in {time.perf_counter() - started:.1f} s")
    return 0


def _run_calibrate(args: argparse.Namespace) -> int:
    _check_common_options(args)
    _check_model_argument(args.model)
    if args.backend == "auto":  # the temperature is fitted on exact logits, whatever the CPU
        args.backend = "torch"
    if args.backend in ("torch-bf16", "onnx-int8"):
        # The temperature is stored for every backend: fit it on the exact (fp32) logits.
        raise StanceError(
            f"--backend {args.backend} changes the logits the temperature is fitted on; calibrate with "
            "--backend torch (or onnx, which matches it) and the temperature serves every backend"
        )
    from stance.eval.evaluate import calibrate_classifier
    from stance.model.loading import DEFAULT_MODEL_DIR, resolve_model_source

    classifier = _load_classifier(args)
    classifier.metadata.temperature = 1.0
    specs = [_dataset_spec(args, path) for path in args.data]
    summary = calibrate_classifier(classifier, specs, batch_size=args.batch_size, progress=not args.no_progress)
    classifier.metadata.metrics["calibration"] = {k: v for k, v in summary.items() if k != "data"} | {
        "data": [str(path) for path in summary["data"]]
    }
    source = Path(resolve_model_source(args.model or DEFAULT_MODEL_DIR))
    if args.output is None:
        if not source.exists():
            raise StanceError(f"{args.model}: a hub model cannot be calibrated in place; pass --output DIR")
        # In place, only stance.json changes: the weights are the same, and every other file in
        # the directory (checkpoints, data, notes) is the user's.
        classifier.metadata.save(source)
        target = source
    else:
        target = classifier.save_pretrained(args.output)
    verdict = "kept" if summary["kept"] else "not kept (T = 1)"
    print(
        f"temperature {summary['temperature']:.4f} {verdict}: {summary['reason']}; dev NLL {summary['nll_before']:.4f} "
        f"-> {summary['nll_after']:.4f}, ECE {summary['ece_before']:.4f} -> {summary['ece_after']:.4f}; "
        f"saved in {target}/stance.json"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``stance`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    # transformers is quieted only where it is imported (see _quiet_transformers): `--help`,
    # argument errors and the ONNX fast path never import it, or torch.
    args.quiet = not args.verbose
    runners = {
        "train": _run_train,
        "score": _run_score,
        "eval": _run_eval,
        "calibrate": _run_calibrate,
        "export": _run_export,
        "serve": _run_serve,
        "predict": _run_predict,
    }
    try:
        return runners[args.command](args)
    except StanceError as error:
        print(f"stance {args.command}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error of ours.
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"stance {args.command}: interrupted (rerun with --resume to continue scoring)", file=sys.stderr)
        return 130
    except OSError as error:
        # The machine, not the input: a read-only or full disk, a permission, a missing device.
        where = f"{error.filename}: " if getattr(error, "filename", None) else ""
        print(f"stance {args.command}: error: {where}{error.strerror or error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
