"""A merged copy of an adapter's weights, cached so that later loads skip the merge.

Loading an adapter directory (the embedded default is one) reads its base, adds ``B @ A`` into
every target weight and, for ``torch-bf16``, casts the result. The additions write into
memory-mapped base weights, so the kernel copies each page on write: on the default that was
0.57 s of a 6.2 s one-pair ``stance score`` on an idle 2-core CPU, and the fp32 weights held
during the bf16 cast raised the command's peak memory from 823 to 1,024 MB. The first load
therefore saves the merged model, in the precision it runs in, and every later load reads that
file: bit-identical weights (the same arithmetic, done once), no merge, no cast.

Where: ``$STANCE_MERGED_CACHE`` if it names a folder, else ``merged/`` in the folder that holds
the bases (``$STANCE_CACHE_DIR``, by default ``~/.cache/stance``). ``STANCE_MERGED_CACHE=0``
turns caching off. An entry costs the model's size once per precision used (the default:
about 220 MB in bf16, 440 MB in fp32); a changed adapter or base gets a new key and replaces
the old entry of its precision. A damaged entry is removed and the adapter merged again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from stance.model.errors import ModelLoadError

ENV_VAR = "STANCE_MERGED_CACHE"
_OFF = ("0", "off", "false", "no")
# The precisions a merged copy is kept in, by the name used in entry folders.
DTYPES = ("fp32", "bf16")


def cache_root() -> Path | None:
    """The folder of merged copies, or None when ``STANCE_MERGED_CACHE`` turns caching off."""
    configured = os.environ.get(ENV_VAR, "").strip()
    if configured.lower() in _OFF:
        return None
    if configured:
        return Path(configured).expanduser()
    from stance.model.bases import cache_dir

    return cache_dir() / "merged"


def entry_dir(adapter_dir: Path, dtype_name: str, id2label: Mapping[int, str]) -> Path | None:
    """The cache folder for ``adapter_dir`` merged into its base in ``dtype_name`` with head
    labels ``id2label``, or None when caching is off.

    The key covers the adapter's weight and config files and its base's (the hashes are
    remembered by size and mtime, so an unchanged adapter costs a ``stat`` per file), the head's
    labels (a caller's ``label_map`` renames them) and the transformers version that writes it.
    """
    if dtype_name not in DTYPES:
        raise ValueError(f"dtype_name must be one of {DTYPES}, got {dtype_name!r}")
    root = cache_root()
    if root is None:
        return None
    import transformers

    from stance.model.loading import directory_key
    from stance.model.onnx_backend import files_key

    folder = root / directory_key(adapter_dir)
    try:
        files = files_key(adapter_dir, folder)
    except OSError:
        return None  # an unreadable adapter file: the merge path reports it properly
    labels = json.dumps({str(index): label for index, label in sorted(id2label.items())})
    key = hashlib.sha256(f"{files}|{labels}|transformers {transformers.__version__}".encode()).hexdigest()
    return folder / f"{dtype_name}-{key[:16]}"


def _torch_dtype(dtype_name: str):
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]


def load(entry: Path, dtype_name: str, *, quiet: Any = contextlib.nullcontext) -> Any | None:
    """The merged model cached in ``entry``, or None when there is none. A damaged entry (a
    truncated or altered file, a missing tensor) is removed, and None returned, so the caller
    merges again and rewrites it."""
    from stance.model.loading import load_hf_model

    if not (entry / "model.safetensors").is_file() or not (entry / "config.json").is_file():
        return None
    try:
        with quiet():
            return load_hf_model(str(entry), require_all_weights=True, dtype=_torch_dtype(dtype_name))
    except ModelLoadError as error:
        print(f"stance: the cached merged weights in {entry} are damaged ({error}); merging again", file=sys.stderr)
        shutil.rmtree(entry, ignore_errors=True)
        return None


def store(model: Any, entry: Path, dtype_name: str) -> Any:
    """Cast ``model`` (just merged) to ``dtype_name`` in place, save it as ``entry``, and
    remove older entries of the same adapter and precision. Returns the model. A cache that
    cannot be written costs only the merge next time: it is reported, never raised."""
    model = model.to(_torch_dtype(dtype_name))
    parent = entry.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with _staging(parent) as staged:
            model.save_pretrained(staged, safe_serialization=True)
            try:
                os.rename(staged, entry)  # atomic: a crash never leaves a half-written entry
            except OSError:
                if not (entry / "model.safetensors").is_file():  # not another process's finished copy
                    raise
        for stale in parent.glob(f"{dtype_name}-*"):
            if stale != entry and stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
    except OSError as error:
        print(
            f"stance: could not cache the merged weights in {parent} ({error}); loading works, only about "
            f"0.5 s slower each time. Free space there, or set {ENV_VAR}=0 (off) or to another folder",
            file=sys.stderr,
        )
        return model
    size = (entry / "model.safetensors").stat().st_size
    print(
        f"stance: merged the adapter once and cached it ({dtype_name}, {size / 1e6:,.0f} MB) in {entry}; "
        f"later loads read it ({ENV_VAR}=0 turns this off)",
        file=sys.stderr,
    )
    return model


@contextlib.contextmanager
def _staging(parent: Path) -> Iterator[Path]:
    """A scratch folder beside the entry, removed afterwards unless it was renamed into place."""
    staged = Path(tempfile.mkdtemp(dir=parent, prefix=".merging-"))
    try:
        yield staged
    finally:
        shutil.rmtree(staged, ignore_errors=True)
