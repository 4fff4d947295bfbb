"""Streaming readers and writers for JSONL, CSV and Parquet pair files.

Readers yield pandas DataFrames of at most ``chunk_rows`` rows, so memory does not
grow with the file. Every error names the file, the row (1-based, as a person counts
data rows) and the column. Writers write to ``<output>.partial`` and rename on
``close()``, so a crashed run never leaves a file that looks complete.

Example:
    >>> fmt = table_format("pairs.jsonl")
    >>> fmt
    'jsonl'
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stance.model.errors import InputDataError

FORMATS = ("jsonl", "csv", "parquet")
_SUFFIXES = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "csv",  # tab-separated: the CSV reader and writer with a tab delimiter
    ".parquet": "parquet",
    ".pq": "parquet",
}


def table_format(path: str | os.PathLike[str], explicit: str | None = None) -> str:
    """Return ``jsonl``, ``csv`` or ``parquet`` from ``explicit`` or the file suffix."""
    if explicit:
        if explicit not in FORMATS:
            raise InputDataError(f"unknown format {explicit!r}; expected one of {list(FORMATS)}")
        return explicit
    suffix = Path(path).suffix.lower()
    if suffix not in _SUFFIXES:
        raise InputDataError(
            f"{path}: cannot tell the format from the suffix {suffix or '(none)'!r}; use "
            f".jsonl, .csv or .parquet, or pass the format explicitly (--input-format/--output-format)"
        )
    return _SUFFIXES[suffix]


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise InputDataError(f"{path}: file not found")
    if path.is_dir():
        raise InputDataError(f"{path}: is a directory, expected a .jsonl, .csv or .parquet file")


def iter_chunks(
    path: str | os.PathLike[str],
    chunk_rows: int = 10_000,
    fmt: str | None = None,
    columns: list[str] | None = None,
    delimiter: str | None = None,
) -> Iterator[pd.DataFrame]:
    """Yield the file's rows as DataFrames of at most ``chunk_rows`` rows, in file order.

    Text columns come back as Python objects (str, or None for missing values); the
    DataFrame index is the 0-based row number in the file. ``columns`` (JSONL only, from
    :func:`scan_jsonl`) gives every chunk the same columns.
    """
    path = Path(path)
    _check_readable(path)
    kind = table_format(path, fmt)
    if chunk_rows < 1:
        raise InputDataError(f"chunk_rows must be >= 1, got {chunk_rows}")
    if kind == "jsonl":
        yield from _iter_jsonl(path, chunk_rows, columns)
    elif kind == "csv":
        yield from _iter_csv(path, chunk_rows, delimiter or csv_delimiter(path))
    else:
        yield from _iter_parquet(path, chunk_rows)


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line, with errors naming the line."""
    with open(path, "rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue  # blank lines are not rows in JSON Lines
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise InputDataError(
                    f"{path}, line {line_number}: not valid UTF-8 ({error.reason} at byte "
                    f"{error.start} of the line); re-encode the file as UTF-8, e.g. iconv -f latin1 -t utf-8"
                ) from None
            if line_number == 1 and text.startswith("\ufeff"):
                text = text[1:]  # a UTF-8 byte order mark (Windows editors write one) is not data
            try:
                record = json.loads(text)
            except json.JSONDecodeError as error:
                raise InputDataError(
                    f"{path}, line {line_number}: invalid JSON ({error.msg}, column {error.colno})"
                ) from None
            except RecursionError:
                raise InputDataError(f"{path}, line {line_number}: JSON nested too deeply to read") from None
            if not isinstance(record, dict):
                raise InputDataError(
                    f"{path}, line {line_number}: expected a JSON object per line, got {type(record).__name__}"
                )
            yield line_number, record


def scan_jsonl(path: str | os.PathLike[str], kinds: dict[str, dict[str, int]] | None = None) -> tuple[list[str], int]:
    """Every key of a JSONL file in first-seen order, and its row count (one cheap pass).

    Rows may differ in their keys; fixing the columns up front gives every output chunk
    the same columns (a key first seen in row 5,000 is not lost, and CSV rows never get
    more fields than the header), and the count gives progress bars a total.

    Args:
        kinds: if given, filled with column -> {JSON kind of its values: first line number},
            so a caller can refuse a column that mixes types before any work (see
            :func:`mixed_kinds`).
    """
    columns: dict[str, None] = {}
    rows = 0
    for line_number, record in _jsonl_records(Path(path)):
        columns.update(dict.fromkeys(record))
        rows += 1
        if kinds is not None:
            for key, value in record.items():
                kinds.setdefault(key, {}).setdefault(json_kind(value), line_number)
    return list(columns), rows


def json_kind(value: object) -> str:
    """The kind of a parsed JSON value as a typed column sees it: null, bool, int, float, text, list, object."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if -(2**63) <= value < 2**63 else "big int"
    return {float: "float", str: "text", list: "list", dict: "object"}[type(value)]


def mixed_kinds(kinds: dict[str, dict[str, int]], path: str | os.PathLike[str]) -> str | None:
    """A message naming the first column whose values a typed format (Parquet) cannot hold in
    one type, e.g. numbers and texts, with the line of each kind; None when every column fits."""
    for column, seen in kinds.items():
        real = {kind: line for kind, line in seen.items() if kind != "null"}
        if len(real) > 1 and set(real) != {"int", "float"} or "big int" in real:
            where = ", ".join(
                f"{kind} (first on line {line})" for kind, line in sorted(real.items(), key=lambda kv: kv[1])
            )
            return (
                f"{path}: column {column!r} holds {where}; a Parquet column has one type. Write JSONL or CSV "
                f"output instead, or make the column's values one type"
            )
    return None


def _iter_jsonl(path: Path, chunk_rows: int, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    records: list[dict] = []
    start = 0
    row = 0
    for _, record in _jsonl_records(path):
        records.append(record)
        row += 1
        if len(records) == chunk_rows:
            yield _frame(records, start, columns)
            start, records = row, []
    if records or start == 0:
        yield _frame(records, start, columns)


def _frame(records: list[dict], start: int, columns: list[str] | None = None) -> pd.DataFrame:
    """A chunk of JSON objects as a DataFrame whose values round-trip exactly.

    Built as objects, so an integer column with a null stays integers (nullable
    ``Int64``) instead of turning into floats (2**53 + 1 would lose its last digit).
    """
    if columns is None:
        columns = list({key: None for record in records for key in record})
    # From Python lists with dtype=object: pandas' own inference would turn [int, None] into floats.
    frame = pd.DataFrame({name: [record.get(name) for record in records] for name in columns}, dtype=object)
    for name in frame.columns:
        values = [v for v in frame[name] if v is not None and not (isinstance(v, float) and v != v)]
        if values and all(json_kind(v) == "int" for v in values):  # bools and ints beyond int64 stay objects
            frame[name] = pd.array([None if _is_null(v) else v for v in frame[name]], dtype="Int64")
    frame.index = pd.RangeIndex(start, start + len(records))
    return frame


def _is_null(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _first_non_utf8(path: Path) -> tuple[int, int]:
    """(1-based line, byte offset) of the first byte sequence that is not UTF-8."""
    offset = 0
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as error:
                return number, offset + error.start
            offset += len(raw)
    return 0, offset


def count_csv_rows(path: str | os.PathLike[str], delimiter: str = ",") -> int | None:
    """Data rows of a delimited file (quoted newlines counted right), for a progress total.

    pyarrow's C++ reader parses at hundreds of MB/s, a small cost next to scoring. None when
    it cannot parse the file: the real reader then reports the problem with its line.
    """
    import pyarrow.csv as pa_csv

    try:
        reader = pa_csv.open_csv(
            path,
            read_options=pa_csv.ReadOptions(block_size=1 << 24),
            parse_options=pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(include_columns=[], include_missing_columns=False),
        )
        return sum(batch.num_rows for batch in reader)
    except (pa.ArrowInvalid, OSError, StopIteration):
        return None


def rows_at_most(path: str | os.PathLike[str], limit: int, fmt: str | None = None) -> int | None:
    """The rows of a table file when there are at most ``limit``, else None (more, or unknown).

    Reads no further than ``limit`` lines, so a huge file costs no more than a small one: JSON
    Lines and CSV count lines (a blank line, or a newline inside a quoted CSV field, counts as a
    row, so the count errs high), Parquet reads its footer. Anything but a regular file (a pipe,
    ``/dev/fd/N``, a device) is None and is not read: what it reads would be lost to the scorer.
    A file it cannot read is None: the real reader then reports the problem with its line.
    """
    import stat

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        kind = table_format(path, fmt)
        if kind == "parquet":
            rows = open_parquet(path).metadata.num_rows
            return rows if rows <= limit else None
        header = 1 if kind == "csv" else 0
        lines, last = 0, b"\n"
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                lines += block.count(b"\n")
                last = block[-1:]
                if lines - header > limit:
                    return None
        rows = lines + (last != b"\n") - header
        return max(rows, 0) if rows <= limit else None
    except (InputDataError, OSError, pa.ArrowException):
        return None


def csv_delimiter(path: str | os.PathLike[str]) -> str:
    """The field separator a delimited file's suffix implies: a tab for .tsv, else a comma."""
    return "\t" if Path(path).suffix.lower() == ".tsv" else ","


def _check_csv_header(path: Path, delimiter: str) -> None:
    """Refuse a header naming a column twice: pandas would rename the second ``premise.1``
    and score the first, silently ignoring the other."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle, delimiter=delimiter), [])
    except (UnicodeDecodeError, csv.Error):
        return  # the reader reports these with the line
    repeated = [(name, count) for name, count in Counter(header).items() if count > 1]
    if repeated:
        name, count = repeated[0]
        raise InputDataError(
            f"{path}, line 1: column {name!r} appears {count} times in the header; rename the copies so "
            f"each column has one name"
        )


def _iter_csv(path: Path, chunk_rows: int, delimiter: str = ",") -> Iterator[pd.DataFrame]:
    if path.is_file():
        _check_csv_header(path, delimiter)
    try:
        # dtype=str + keep_default_na=False: texts like "NA" or "null" stay texts; an empty
        # cell becomes "" and is reported per row as an empty text.
        reader = pd.read_csv(
            path,
            sep=delimiter,
            chunksize=chunk_rows,
            dtype=str,
            keep_default_na=False,
            encoding="utf-8",
            encoding_errors="strict",
        )
        yielded = False
        for chunk in reader:
            yielded = True
            yield chunk
        if not yielded:
            yield pd.DataFrame()
    except UnicodeDecodeError:
        line, offset = _first_non_utf8(path)
        raise InputDataError(
            f"{path}, line {line}: not valid UTF-8 (byte {offset} of the file); re-encode the file as UTF-8, "
            f"e.g. iconv -f latin1 -t utf-8"
        ) from None
    except pd.errors.EmptyDataError:
        yield pd.DataFrame()
    except pd.errors.ParserError as error:
        raise InputDataError(
            f"{path}: malformed CSV ({error}); check quoting of texts with commas, quotes or newlines"
        ) from None


def open_parquet(path: str | os.PathLike[str] | BinaryIO, name: str | os.PathLike[str] | None = None) -> pq.ParquetFile:
    """Open a Parquet file (or an in-memory buffer named ``name``), with a clear error when it is not one."""
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise InputDataError(f"{name or path}: not a readable Parquet file ({error})") from None


def _iter_parquet(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    if not path.is_file():
        # Parquet keeps its index at the end of the file, so a stream (standard input, a
        # pipe) must be read whole before the first row can be decoded.
        import io

        with open(path, "rb") as handle:
            parquet = open_parquet(io.BytesIO(handle.read()), name=path)
    else:
        parquet = open_parquet(path)
    start = 0
    yielded = False
    for batch in parquet.iter_batches(batch_size=chunk_rows):
        # ignore_metadata: a DataFrame's index stored in the file (a named index, say) comes
        # back as an ordinary column instead of being replaced by row numbers and lost.
        # integer_object_nulls: an int column with a null stays Python ints (not floats that
        # lose digits beyond 2**53, and not "float" in a per-row type error).
        frame = batch.to_pandas(ignore_metadata=True, integer_object_nulls=True)
        frame.index = pd.RangeIndex(start, start + len(frame))
        start += len(frame)
        yielded = True
        yield frame
    if not yielded:
        yield parquet.schema_arrow.empty_table().to_pandas(ignore_metadata=True, integer_object_nulls=True)


def read_table(path: str | os.PathLike[str], fmt: str | None = None) -> pd.DataFrame:
    """Read a whole (small or medium) pair file into one DataFrame, index = file row."""
    chunks = list(iter_chunks(path, chunk_rows=100_000, fmt=fmt))
    return pd.concat(chunks) if len(chunks) > 1 else chunks[0]


def require_columns(frame: pd.DataFrame, columns: dict[str, str], path: str | os.PathLike[str]) -> None:
    """Raise a clear error if a needed column is absent.

    Args:
        columns: role -> column name, e.g. {"premise": "body", "hypothesis": "headline"}.
    """
    if len(frame.columns) == 0 and len(frame) == 0:
        raise InputDataError(
            f"{path}: the file is empty (no rows, no columns); expected pairs with columns {list(columns.values())}"
        )
    for role, column in columns.items():
        if column not in frame.columns:
            hint = ""
            if len(frame.columns) == 1 and any(mark in str(frame.columns[0]) for mark in ";\t|"):
                hint = "; the header looks split by another separator: pass it with --delimiter (e.g. --delimiter ';')"
            raise InputDataError(
                f"{path}: no {role} column {column!r}; the file has columns {list(map(str, frame.columns))}. "
                f"Name the right one with --{role}-column (or {role}_column in a recipe){hint}"
            )


def _jsonable(record: dict) -> dict:
    """Replace float NaN (pandas' missing value) by None and numpy scalars by Python ones."""
    clean = {}
    for key, value in record.items():
        if isinstance(value, float) and not math.isfinite(value):
            value = None  # JSON has no NaN or Infinity
        elif hasattr(value, "item") and not isinstance(value, (list, dict, str)):
            try:
                value = value.item()
            except (ValueError, AttributeError):
                value = value.tolist() if hasattr(value, "tolist") else value
        elif value is pd.NA or value is pd.NaT:
            value = None
        clean[key] = value
    return clean


def _json_line(record: dict) -> str:
    """One JSON object as a line of valid UTF-8 JSON.

    A lone surrogate (legal in a JSON ``\\ud800`` escape, not encodable as UTF-8) is
    written as its escape, so the value round-trips instead of failing the write.
    """
    line = json.dumps(record, ensure_ascii=False, default=str, allow_nan=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(record, ensure_ascii=True, default=str, allow_nan=False)
    return line


class TableWriter:
    """Incremental writer for one output file; atomic: ``<path>.partial`` renamed on close.

    Given an open binary stream instead of a path (standard output, a pipe), it writes
    straight to the stream: there is nothing to rename.

    Example:
        >>> writer = TableWriter("out.jsonl")        # doctest: +SKIP
        >>> writer.write(frame); writer.close()      # doctest: +SKIP
    """

    def __init__(
        self, path: str | os.PathLike[str] | BinaryIO, fmt: str | None = None, delimiter: str | None = None
    ) -> None:
        self._stream = None if isinstance(path, (str, os.PathLike)) else path
        if self._stream is not None:
            if fmt is None:
                raise InputDataError("writing to a stream: pass the output format (--output-format)")
            self.path = Path(getattr(path, "name", "<stream>"))
            self.format = table_format(self.path, fmt)
            self.partial_path = None
            self._handle = self._stream
        else:
            self.path = Path(path)
            self.format = table_format(self.path, fmt)
            self.partial_path = self.path.with_name(self.path.name + ".partial")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = None if self.format == "parquet" else open(self.partial_path, "wb")
        self.delimiter = delimiter or csv_delimiter(self.path)
        self._schema: pa.Schema | None = None
        self._parquet: pq.ParquetWriter | None = None
        self._wrote_header = False

    def write(self, frame: pd.DataFrame) -> None:
        """Append rows (a CSV header is written once, before the first rows)."""
        if self.format == "jsonl":
            # json.dumps keeps floats exact (pandas.to_json rounds to 10 digits); NaN -> null.
            lines = [_json_line(_jsonable(record)) for record in frame.to_dict(orient="records")]
            self._handle.write(("\n".join(lines) + ("\n" if lines else "")).encode("utf-8"))
        elif self.format == "csv":
            # Quote every text field: csv's minimal quoting leaves a bare "\r" unquoted, which
            # splits the row when the file is read back.
            frame.to_csv(
                self._handle,
                sep=self.delimiter,
                header=not self._wrote_header,
                index=False,
                encoding="utf-8",
                quoting=csv.QUOTE_NONNUMERIC,
                lineterminator="\n",
            )
            self._wrote_header = True
        else:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._schema = table.schema
                sink = self._stream if self._stream is not None else self.partial_path
                self._parquet = pq.ParquetWriter(sink, self._schema)
            else:
                # safe: a later chunk's 2.5 is never cut to 2 to fit an int column.
                try:
                    table = table.cast(self._schema) if table.schema != self._schema else table
                except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as error:
                    raise InputDataError(
                        f"{self.path}: rows after the first chunk do not fit the Parquet schema fixed by the "
                        f"first ({error}); write JSONL or CSV output, or make each column one type"
                    ) from None
            self._parquet.write_table(table)
        if self._stream is not None:
            self._stream.flush()

    def close(self) -> Path:
        """Flush to disk, then move the file to its final name; returns the final path."""
        if self._parquet is not None:
            self._parquet.close()
        elif self.format == "parquet":
            pq.write_table(pa.table({}), self._stream if self._stream is not None else self.partial_path)
        if self._stream is not None:
            self._stream.flush()
            return self.path
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
        os.replace(self.partial_path, self.path)
        return self.path
