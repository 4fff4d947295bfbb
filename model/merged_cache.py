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
turns caching off. An entry costs the model's size once per precision used (the default: about
220 MB in bf16, 440 MB in fp32). The cache keeps at most :data:`MAX_ENTRIES` entries, the least
recently used going first, and drops those of adapters whose folder is gone; a changed adapter or
base gets a new key, so an old entry is never read. A truncated entry is removed and the adapter
merged again (an entry is trusted like the unpacked base beside it: it is not re-hashed on load).
Adapters on a hub base are not cached (a hub name does not pin its weights).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from stance.model.errors import ModelLoadError

ENV_VAR = "STANCE_MERGED_CACHE"
_OFF = ("0", "off", "false", "no")
# The precisions a merged copy is kept in, by the name used in entry folders.
DTYPES = ("fp32", "bf16")
# Entries kept, all adapters and precisions together: the default in both precisions and a few
# of the user's own adapters (about 0.9-1.8 GB for MPNet-sized models).
MAX_ENTRIES = 4
_SOURCE = "source.json"  # in each adapter's folder: the adapter directory it caches
_STALE_SCRATCH_SECONDS = 3600  # a scratch folder this old belongs to a process that died


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
    labels (a caller's ``label_map`` renames them), the code that merges (this package's
    ``lora.py``, the peft, torch and transformers versions) and the precision. None for an
    adapter on a hub base: its name does not pin its weights.
    """
    if dtype_name not in DTYPES:
        raise ValueError(f"dtype_name must be one of {DTYPES}, got {dtype_name!r}")
    root = cache_root()
    if root is None:
        return None
    from stance.model.loading import directory_key
    from stance.model.onnx_backend import adapter_base_dir, files_key

    if adapter_base_dir(adapter_dir) is None:
        return None
    folder = root / directory_key(adapter_dir)
    try:
        files = files_key(adapter_dir, folder)
    except OSError:
        return None  # an unreadable adapter file: the merge path reports it properly
    labels = json.dumps({str(index): label for index, label in sorted(id2label.items())})
    key = hashlib.sha256(f"{files}|{labels}|{_merging_code()}".encode()).hexdigest()
    return folder / f"{dtype_name}-{key[:16]}"


def _merging_code() -> str:
    """What decides the merged weights besides the files: this package's merge and the
    versions of the libraries that merge (peft, for adapters lora.py leaves to it) and save."""
    from importlib import metadata

    import torch
    import transformers

    from stance.model import lora

    try:
        peft_version = metadata.version("peft")
    except metadata.PackageNotFoundError:
        peft_version = "none"
    merge = hashlib.sha256(Path(lora.__file__).read_bytes()).hexdigest()[:16]
    return f"lora.py {merge}|peft {peft_version}|torch {torch.__version__}|transformers {transformers.__version__}"


def _torch_dtype(dtype_name: str):
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]


def load(entry: Path, dtype_name: str) -> Any | None:
    """The merged model cached in ``entry``, or None when there is none. A damaged entry (a
    truncated file, a missing tensor) is removed, and None returned, so the caller merges again
    and rewrites it; the file is not re-hashed (see the module docstring)."""
    from stance.model.loading import load_hf_model, quiet_hf_loading

    if not (entry / "model.safetensors").is_file() or not (entry / "config.json").is_file():
        return None
    try:
        with quiet_hf_loading():
            model = load_hf_model(str(entry), require_all_weights=True, dtype=_torch_dtype(dtype_name))
    except ModelLoadError as error:
        if entry.exists():  # not merely removed by another process meanwhile
            print(f"stance: the cached merged weights in {entry} are damaged ({error}); merging again", file=sys.stderr)
            shutil.rmtree(entry, ignore_errors=True)
        return None
    with contextlib.suppress(OSError):
        os.utime(entry)  # recently used: pruning keeps it
    return model


def store(model: Any, entry: Path, dtype_name: str, adapter_dir: Path) -> Any:
    """Cast ``model`` (just merged from ``adapter_dir``) to ``dtype_name`` in place, save it as
    ``entry``, and prune the cache (:data:`MAX_ENTRIES`). Returns the model. A cache that cannot
    be written (no space, no permission) costs only the merge next time: it is reported on
    stderr, never raised."""
    from stance.model.loading import quiet_hf_loading

    model = model.to(_torch_dtype(dtype_name))
    parent = entry.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        (parent / _SOURCE).write_text(json.dumps({"adapter": str(adapter_dir.resolve())}), encoding="utf-8")
        with _staging(parent) as staged:
            with quiet_hf_loading():
                model.save_pretrained(staged, safe_serialization=True)
            size = (staged / "model.safetensors").stat().st_size
            try:
                os.rename(staged, entry)  # atomic: a crash never leaves a half-written entry
            except OSError:
                if not (entry / "model.safetensors").is_file():  # not another process's finished copy
                    raise
    # Anything that stops the copy (safetensors reports a full disk as its own error type) must
    # not stop the load: the model in memory is complete either way.
    except Exception as error:
        print(
            f"stance: could not cache the merged weights in {parent} ({error}); loading works, only about "
            f"0.5 s slower each time. Free space there, or set {ENV_VAR}=0 (off) or to another folder",
            file=sys.stderr,
        )
        return model
    prune(parent.parent, keep=entry)
    print(
        f"stance: merged the adapter once and cached it ({dtype_name}, {size / 1e6:,.1f} MB) in {entry}; "
        f"later loads read it ({ENV_VAR}=0 turns this off)",
        file=sys.stderr,
    )
    return model


def prune(root: Path, *, keep: Path | None = None) -> list[Path]:
    """Remove the entries of adapters whose folder is gone, scratch folders left by a process
    that died, and then the least recently used entries beyond :data:`MAX_ENTRIES` (never
    ``keep``). Returns what was removed. A process still reading a removed entry is unaffected
    (its files stay readable until closed)."""
    removed: list[Path] = []
    now = time.time()
    entries: list[Path] = []
    for folder in sorted(p for p in root.glob("*") if p.is_dir()):
        try:
            adapter = json.loads((folder / _SOURCE).read_text(encoding="utf-8")).get("adapter", "")
        except (OSError, ValueError, AttributeError):
            adapter = None  # written by a process that died before its source file: judged by age below
        if adapter is not None and not Path(adapter).is_dir():
            removed.append(folder)
            continue
        for child in folder.iterdir():
            with contextlib.suppress(OSError):
                if child.name.startswith(".merging-") and now - child.stat().st_mtime > _STALE_SCRATCH_SECONDS:
                    removed.append(child)
                elif child.is_dir() and child.name.split("-", 1)[0] in DTYPES:
                    entries.append(child)
    by_use = sorted(entries, key=lambda p: (p == keep, _mtime(p)), reverse=True)
    removed += by_use[MAX_ENTRIES:]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


@contextlib.contextmanager
def _staging(parent: Path) -> Iterator[Path]:
    """A scratch folder beside the entry, removed afterwards unless it was renamed into place."""
    staged = Path(tempfile.mkdtemp(dir=parent, prefix=".merging-"))
    try:
        yield staged
    finally:
        shutil.rmtree(staged, ignore_errors=True)
