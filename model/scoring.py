"""Stream-score pair files: bounded memory, same rows in the same order, resumable.

Each input chunk is scored and written as its own part file under
``<output>.parts/`` (written to a temporary name, then renamed, so a part is either
complete or absent). When every chunk is done the parts are joined into
``<output>.partial``, which is renamed to ``<output>``. A run killed at any point and
restarted with ``resume=True`` skips the finished parts and gives output identical to
an uninterrupted run. Rows whose texts are empty or missing get an ``error`` value and
no scores; every other row is scored.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stance.model.batching import progress_bar
from stance.model.errors import InputDataError
from stance.model.labels import LABELS
from stance.model.tables import (
    TableWriter,
    count_csv_rows,
    csv_delimiter,
    iter_chunks,
    mixed_kinds,
    open_parquet,
    require_columns,
    scan_jsonl,
    table_format,
)

if TYPE_CHECKING:
    from stance.model.classifier import StanceClassifier

logger = logging.getLogger(__name__)

ADDED_COLUMNS = ("label", *(f"prob_{label}" for label in LABELS), "truncated", "error")
WINDOW_COLUMNS = ("window_start", "window_end")
EVIDENCE_COLUMNS = ("evidence_spans",)


def row_problem(text: object, role: str) -> str | None:
    """Why ``text`` cannot be scored as the ``role`` of a pair, or None if it can."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return f"missing {role} (null)"
    if not isinstance(text, str):
        return f"{role} is {type(text).__name__}, expected text"
    if not text.strip():
        return f"empty {role}"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            return (
                f"{role} holds a lone surrogate ({text[error.start]!r} at character {error.start}), not valid Unicode"
            )
    return None


def score_frame(
    classifier: StanceClassifier,
    frame: pd.DataFrame,
    *,
    premise_column: str = "premise",
    hypothesis_column: str = "hypothesis",
    batch_size: int = 32,
    symmetric: bool = False,
    long_text: str | None = None,
    progress=None,
    prefix: str = "",
    abstain_threshold: float | None = None,
) -> pd.DataFrame:
    """Score one DataFrame; returns it with the added columns, rows and index unchanged.

    The added columns are named ``prefix + name`` (``label``, ``prob_support``...); an
    input column of the same name is an error rather than being overwritten.
    """
    check_no_collision(frame.columns, prefix, long_text or classifier.metadata.long_text)
    problems = [
        "; ".join(p for p in (row_problem(premise, "premise"), row_problem(hypothesis, "hypothesis")) if p) or None
        for premise, hypothesis in zip(frame[premise_column], frame[hypothesis_column], strict=True)
    ]
    valid = np.array([problem is None for problem in problems], dtype=bool)
    out = frame.copy()
    labels = np.full(len(frame), None, dtype=object)
    probabilities = np.full((len(frame), len(LABELS)), np.nan)
    truncated = np.full(len(frame), None, dtype=object)
    mode = long_text or classifier.metadata.long_text
    spans = np.full((len(frame), 2), -1, dtype=np.int64)
    evidence = np.full(len(frame), None, dtype=object)
    # The bar moves per model batch where a batch is one pair per row (truncate and evidence
    # modes, one direction); otherwise once per chunk.
    per_batch = progress is not None and not symmetric and mode in ("truncate", "evidence")
    if valid.any():
        result = classifier.predict(
            list(frame[premise_column][valid]),
            list(frame[hypothesis_column][valid]),
            batch_size=batch_size,
            symmetric=symmetric,
            long_text=mode,
            abstain_threshold=abstain_threshold,
            progress=progress if per_batch else False,
        )
        labels[valid] = result.labels
        probabilities[valid] = result.probabilities
        truncated[valid] = result.truncated.tolist()
        if result.window_spans is not None:
            spans[valid] = np.asarray(result.window_spans, dtype=np.int64).reshape(-1, 2)
        if result.evidence_spans is not None:
            # JSON text, the same in every output format: [[start, end], ...] of the kept sentences
            evidence[valid] = [json.dumps([list(span) for span in kept]) for kept in result.evidence_spans]
    out[prefix + "label"] = pd.array(labels, dtype=object)
    for column, label in enumerate(LABELS):
        out[f"{prefix}prob_{label}"] = probabilities[:, column]
    out[prefix + "truncated"] = pd.array(truncated, dtype=object)
    out[prefix + "error"] = pd.array(problems, dtype=object)
    if mode == "window":
        out[prefix + "window_start"], out[prefix + "window_end"] = spans[:, 0], spans[:, 1]
    if mode == "evidence":
        out[prefix + "evidence_spans"] = pd.array(evidence, dtype=object)
    if progress is not None:
        progress.update(len(frame) - (int(valid.sum()) if per_batch else 0))
    return out


def check_no_collision(columns, prefix: str, long_text: str) -> None:
    """Refuse to overwrite input columns that share a name with an added column."""
    extra = {"window": WINDOW_COLUMNS, "evidence": EVIDENCE_COLUMNS}.get(long_text, ())
    added = [prefix + name for name in ADDED_COLUMNS + extra]
    clash = [name for name in added if name in set(map(str, columns))]
    if clash:
        raise InputDataError(
            f"the input already has column(s) {clash}, which scoring would overwrite; pass an output "
            f"prefix (--output-prefix pred_ gives pred_label, pred_prob_support, ...)"
        )


STDIO = "-"


def is_regular_or_absent(path: Path) -> bool:
    """True for a regular file or a path that does not exist yet.

    Only these may be written through a temporary file and a rename: renaming over
    ``/dev/stdout``, a FIFO or a device would replace it with a regular file.
    """
    try:
        import stat

        return stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return True


def _input_fingerprint(path: Path) -> dict:
    stat = path.stat()
    with open(path, "rb") as handle:
        head = hashlib.sha256(handle.read(1 << 16)).hexdigest()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "head_sha256": head}


class OutputLock:
    """An exclusive lock on ``<output>.lock`` for the length of one scoring run.

    A second run writing the same output fails at once with a clear error instead of
    mixing its rows into the first run's parts. The lock is an ``flock``, so the kernel
    releases it when a run dies, however it dies; a stale lock file is harmless.
    """

    def __init__(self, output_path: Path) -> None:
        self.path = output_path.with_name(output_path.name + ".lock")
        self._handle = None

    def __enter__(self) -> OutputLock:
        try:
            import fcntl
        except ImportError:  # Windows: no flock; runs are not protected against each other
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            handle = open(self.path, "a+b")
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                raise InputDataError(
                    f"{self.path.with_suffix('')}: another stance run is writing this output (lock {self.path}); "
                    f"wait for it to finish or choose another --output"
                ) from None
            # The previous holder may have removed the file between our open and our lock:
            # then we hold a lock on a deleted file, so take the lock again on the new one.
            if os.path.exists(self.path) and os.path.samestat(os.fstat(handle.fileno()), os.stat(self.path)):
                self._handle = handle
                return self
            handle.close()

    def __exit__(self, *exc_info) -> None:
        if self._handle is not None:
            self.path.unlink(missing_ok=True)
            self._handle.close()
            self._handle = None


def _changed_keys(previous: dict, current: dict) -> list[str]:
    """Keys whose values differ, one level into nested dicts (``model.backend``, ``model.files``)."""
    changed = []
    for key in sorted(set(previous) | set(current)):
        before, after = previous.get(key), current.get(key)
        if before == after:
            continue
        if isinstance(before, dict) and isinstance(after, dict):
            changed += [f"{key}.{sub}" for sub in sorted(set(before) | set(after)) if before.get(sub) != after.get(sub)]
        else:
            changed.append(key)
    return changed


def _prepare_parts(parts_dir: Path, manifest: dict, resume: bool, out_fmt: str) -> set[int]:
    """Return indices of finished parts; start fresh unless resuming a matching run.

    Parts are written only after the manifest, each under a temporary name renamed when
    complete, so only exact ``part-NNNNNN.<fmt>`` names count as done; a missing manifest
    means the run died before any part was written.
    """
    manifest_path = parts_dir / "manifest.json"
    if resume and manifest_path.exists():
        try:
            previous = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            previous = None  # unreachable with the atomic write below; start over to be safe
        if previous is not None:
            if previous != manifest:
                changed = _changed_keys(previous, manifest)
                hint = "run with the same input and options, or drop --resume to start over"
                if "model.backend" in changed and (before := previous["model"].get("backend")):
                    # e.g. --backend auto picked bf16 here and fp32 where the run began
                    hint = f"the interrupted run used backend {before!r}: pass --backend {before} to continue it"
                raise InputDataError(
                    f"cannot resume: {changed} differ from the interrupted run (see {manifest_path}); {hint}"
                )
            finished = re.compile(rf"^part-(\d{{6}})\.{re.escape(out_fmt)}$")
            done = set()
            for path in parts_dir.iterdir():
                match = finished.match(path.name)
                if match:
                    done.add(int(match.group(1)))
                elif path.name != "manifest.json":
                    path.unlink()  # a part whose write was interrupted
            return done
    if parts_dir.exists():
        shutil.rmtree(parts_dir)
    parts_dir.mkdir(parents=True)
    staged = manifest_path.with_name("manifest.json.tmp")
    staged.write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(staged, manifest_path)
    return set()


def _write_part(frame: pd.DataFrame, path: Path, fmt: str, delimiter: str = ",") -> None:
    # TableWriter writes <part>.partial and renames it: a part exists whole or not at all.
    writer = TableWriter(path, fmt, delimiter)
    writer.write(frame)
    writer.close()


def _join_parts(parts: list[Path], output: Path, fmt: str) -> None:
    partial = output.with_name(output.name + ".partial")
    if fmt == "parquet":
        schemas = [pq.read_schema(p) for p in parts]
        try:
            schema = pa.unify_schemas(schemas, promote_options="permissive")
        except (pa.ArrowTypeError, pa.ArrowInvalid) as error:
            # Only a stream can get here (files are checked first); the parts stay for --resume.
            raise InputDataError(
                f"{output}: the scored parts do not share one Parquet schema ({error}); a column changes type "
                f"between chunks. Write JSONL or CSV output instead; the parts are kept in {parts[0].parent}"
            ) from None
        with pq.ParquetWriter(partial, schema) as writer:
            for part in parts:
                writer.write_table(pq.read_table(part).cast(schema))
    else:
        with open(partial, "wb") as target:
            for index, part in enumerate(parts):
                with open(part, "rb") as source:
                    if fmt == "csv" and index > 0:
                        source.readline()  # the header is written once, by the first part
                    shutil.copyfileobj(source, target, 1 << 20)
            target.flush()
            os.fsync(target.fileno())
    os.replace(partial, output)


def score_file(
    classifier: StanceClassifier,
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    premise_column: str = "premise",
    hypothesis_column: str = "hypothesis",
    input_format: str | None = None,
    output_format: str | None = None,
    chunk_rows: int = 4096,
    batch_size: int = 32,
    symmetric: bool = False,
    long_text: str | None = None,
    resume: bool = False,
    progress: bool = False,
    prefix: str = "",
    abstain_threshold: float | None = None,
    delimiter: str | None = None,
) -> Path:
    """Score every row of ``input_path`` into ``output_path``, streaming in chunks.

    Output rows equal input rows in number and order; every input column is kept and
    ``label``, ``prob_support``, ``prob_contradict``, ``prob_neutral``, ``truncated``,
    ``error`` are added (plus ``window_start``/``window_end`` in window mode: character
    offsets of the premise window that decided the label).

    Args:
        input_path: a file, or ``-`` for standard input (read once, as it streams; JSONL
            unless ``input_format`` says otherwise).
        output_path: a file (written through ``<output>.parts/`` and renamed when complete,
            locked against a second run), or ``-`` / ``/dev/stdout`` / a pipe: streamed.
        resume: continue an interrupted run with the same input, options and model
            (refused for streams, which cannot be re-read).
        prefix: put before every added column name (needed when the input has a ``label`` column).
        progress: show a tqdm bar with pairs/s.
        delimiter: the input's field separator when it is delimited text (default: a tab for
            .tsv, else a comma); the output's follows its own suffix (.tsv: tab).
    """
    input_path = Path("/dev/stdin") if str(input_path) == STDIO else Path(input_path)
    output_is_stream = is_stream(output_path)
    output_path = Path("/dev/stdout") if str(output_path) == STDIO else Path(output_path)
    if output_path.is_symlink() and not output_is_stream:
        # Write where the link points: renaming over the link would replace it with a file.
        output_path = output_path.resolve()
    if not input_path.exists():
        raise InputDataError(f"{input_path}: file not found")
    # Standard input, FIFOs and devices can be read only once: no fingerprint (reading it
    # would consume rows), so no resume either.
    input_is_stream = is_stream(input_path)
    in_fmt = table_format(input_path, input_format or ("jsonl" if input_is_stream else None))
    out_fmt = table_format(output_path, output_format or (None if output_path.suffix else in_fmt))
    if not output_is_stream:
        output_path.parent.mkdir(parents=True, exist_ok=True)  # a read-only place fails here, before any work
    if output_path.is_dir():
        raise InputDataError(
            f"{output_path}: is a directory; pass an output file name (e.g. {output_path}/scored.{out_fmt})"
        )
    if not input_is_stream and output_path.resolve() == input_path.resolve():
        raise InputDataError(f"{output_path}: output would overwrite the input; choose another output path")
    if resume and (input_is_stream or output_is_stream):
        stream = input_path if input_is_stream else output_path
        raise InputDataError(
            f"--resume needs a regular input and output file; {stream} is a stream (standard input/output, "
            f"a pipe or a device), which cannot be re-read or appended to safely. Drop --resume, or use files"
        )
    options = {
        "chunk_rows": chunk_rows,
        "premise_column": premise_column,
        "hypothesis_column": hypothesis_column,
        "symmetric": symmetric,
        "long_text": long_text or classifier.metadata.long_text,
        "output_format": out_fmt,
        "prefix": prefix,
        "abstain_threshold": abstain_threshold,
        "delimiter": delimiter,
    }
    columns, total = None, None
    if in_fmt == "jsonl" and not input_is_stream:
        kinds: dict[str, dict[str, int]] = {}
        columns, total = scan_jsonl(input_path, kinds)  # fixes the output columns; gives the bar a total
        problem = mixed_kinds(kinds, input_path) if out_fmt == "parquet" else None
        if problem:
            raise InputDataError(problem)  # before any scoring, not when the parts are joined
    elif in_fmt == "parquet" and not input_is_stream:
        total = open_parquet(input_path).metadata.num_rows
    elif in_fmt == "csv" and not input_is_stream and progress:
        total = count_csv_rows(input_path, delimiter or csv_delimiter(input_path))
    chunks = iter_chunks(input_path, chunk_rows, in_fmt, columns=columns, delimiter=delimiter)
    first = next(chunks)
    # Check the columns before anything is written, so a wrong name leaves nothing behind.
    if len(first.columns) or len(first):
        require_columns(first, {"premise": premise_column, "hypothesis": hypothesis_column}, input_path)
        check_no_collision(first.columns, prefix, options["long_text"])
    else:
        logger.warning("%s is empty (no rows, no columns): the output will be empty too", input_path)
    chunks = _conforming(itertools.chain([first], _prefetched(chunks)), list(first.columns), input_path)
    score = functools.partial(
        _score_chunk,
        classifier,
        input_path=input_path,
        premise_column=premise_column,
        hypothesis_column=hypothesis_column,
        batch_size=batch_size,
        symmetric=symmetric,
        long_text=long_text,
        prefix=prefix,
        abstain_threshold=abstain_threshold,
    )
    bar = progress_bar(total, progress, desc="scoring") if progress else None
    try:
        if output_is_stream:
            _score_to_stream(chunks, score, output_path, out_fmt, bar)
            return output_path
        manifest = options | {
            "input": {"stream": str(input_path)} if input_is_stream else _input_fingerprint(input_path),
            "model": classifier.fingerprint(),
        }
        with OutputLock(output_path):
            _score_to_file(chunks, score, output_path, out_fmt, manifest, resume, bar)
        return output_path
    except OSError as error:
        if isinstance(error, BrokenPipeError) or error.filename:
            raise
        # A write through an open handle (a full disk, /dev/full, a closed device) names no
        # file; the user needs to know which one.
        raise OSError(error.errno, error.strerror, str(output_path)) from error
    finally:
        if bar is not None:
            bar.close()


def _prefetched(chunks, depth: int = 1):
    """Read the next chunk in a background thread while the current one is scored.

    Parsing (pyarrow, and much of pandas) and scoring (tokenizers, onnxruntime, torch)
    release the GIL, so on 2 cores reading overlaps the model's work. At most ``depth``
    chunks wait in memory; an error while reading is raised where the chunk was due.
    """
    import queue
    import threading

    done = object()
    waiting: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def read() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        waiting.put(chunk, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            waiting.put(done)
        except BaseException as error:  # handed to the consumer, raised there
            waiting.put(error)

    thread = threading.Thread(target=read, name="stance-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = waiting.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def _conforming(chunks, columns: list[str], input_path: Path):
    """Yield chunks with exactly ``columns`` (the first chunk's), so every part of the output
    has one schema. A column missing from a later chunk is added as nulls; a column the
    first chunk lacked (only possible for a JSONL stream, which cannot be scanned first)
    is an error naming the row, because dropping it would lose data."""
    for chunk in chunks:
        if list(chunk.columns) != columns and (len(chunk.columns) or len(chunk)):
            extra = [name for name in chunk.columns if name not in columns]
            if extra:
                raise InputDataError(
                    f"{input_path}, row {int(chunk.index[0]) + 1} onwards: key(s) {extra} not seen in the first "
                    f"chunk, whose columns fix the output's; read from a file (scanned first) or raise --chunk-rows"
                )
            chunk = chunk.reindex(columns=columns)
        yield chunk


def _score_chunk(classifier: StanceClassifier, chunk: pd.DataFrame, *, input_path: Path, progress=None, **options):
    """Score one chunk read from ``input_path`` (an empty chunk passes through)."""
    if not (len(chunk.columns) or len(chunk)):
        return chunk
    require_columns(
        chunk, {"premise": options["premise_column"], "hypothesis": options["hypothesis_column"]}, input_path
    )
    return score_frame(classifier, chunk, progress=progress, **options)


def is_stream(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` must be read or written as a stream: ``-``, anything under ``/dev``
    or ``/proc`` (``/dev/stdout`` even when the shell redirected it to a file), a pipe or a device."""
    text = os.fspath(path)
    return text == STDIO or text.startswith(("/dev/", "/proc/")) or not is_regular_or_absent(Path(text))


def _score_to_stream(chunks, score, output_path: Path, out_fmt: str, bar) -> None:
    """Write scored chunks straight to a stream (standard output, a pipe, a device)."""
    import sys

    standard = {"/dev/stdout": sys.stdout, "/dev/stderr": sys.stderr}.get(str(output_path))
    if standard is not None:
        standard.flush()  # whatever was printed before comes first
        _write_stream(chunks, score, standard.buffer, out_fmt, bar)
        return
    with open(output_path, "wb") as handle:
        _write_stream(chunks, score, handle, out_fmt, bar)


def _write_stream(chunks, score, handle, out_fmt: str, bar) -> None:
    writer = TableWriter(handle, out_fmt)
    for chunk in chunks:
        writer.write(score(chunk, progress=bar))
    writer.close()


def _score_to_file(chunks, score, output_path: Path, out_fmt: str, manifest: dict, resume: bool, bar) -> None:
    """Score into part files under ``<output>.parts/`` (resumable), then join them atomically."""
    parts_dir = output_path.with_name(output_path.name + ".parts")
    done = _prepare_parts(parts_dir, manifest, resume, out_fmt)
    parts: list[Path] = []
    for index, chunk in enumerate(chunks):
        part = parts_dir / f"part-{index:06d}.{out_fmt}"
        parts.append(part)
        if index in done:
            if bar is not None:
                bar.update(len(chunk))
            continue
        _write_part(score(chunk, progress=bar), part, out_fmt, csv_delimiter(output_path))
    _join_parts(parts, output_path, out_fmt)
    shutil.rmtree(parts_dir, ignore_errors=True)
