"""Beyond one machine: Ray Data scoring equals the local engine; 2-process DDP training on CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stance.model import StanceClassifier
from tests.test_scoring import pairs_frame

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    from stance.model.ray_engine import init_local_ray

    init_local_ray(num_cpus=3)  # two actors + one CPU for reading and writing
    yield ray
    ray.shutdown()


def test_ray_scoring_equals_local_engine(tmp_path, tiny_model_dir, local_ray):
    from stance.model.ray_engine import score_parquet
    from stance.model.scoring import score_file

    source = tmp_path / "in"
    source.mkdir()
    frames = [pairs_frame(37), pairs_frame(21), pairs_frame(44)]
    for index, frame in enumerate(frames):
        frame["id"] = [f"f{index}-{i}" for i in range(len(frame))]
        frame.loc[3, "premise"] = ""  # a bad row is marked, not dropped, on both engines
        frame.to_parquet(source / f"part-{index}.parquet", index=False)
    score_parquet(str(source), str(tmp_path / "out"), str(tiny_model_dir), concurrency=2, batch_size=16, device="cpu")
    ray_out = pd.concat(pd.read_parquet(p) for p in sorted((tmp_path / "out").glob("*.parquet")))

    classifier = StanceClassifier.from_pretrained(tiny_model_dir, device="cpu")
    local = []
    for index in range(len(frames)):
        score_file(classifier, source / f"part-{index}.parquet", tmp_path / f"local-{index}.parquet")
        local.append(pd.read_parquet(tmp_path / f"local-{index}.parquet"))
    local_out = pd.concat(local)
    assert list(ray_out.columns) == list(local_out.columns)
    assert len(ray_out) == len(local_out) == sum(len(f) for f in frames)
    # Ray names its output files by task, not by input order: align the rows by id.
    ray_out = ray_out.set_index("id").loc[local_out["id"]].reset_index()
    assert list(ray_out["label"].fillna("")) == list(local_out["label"].fillna(""))
    assert list(ray_out["error"].fillna("")) == list(local_out["error"].fillna(""))
    columns = ["prob_support", "prob_contradict", "prob_neutral"]
    np.testing.assert_allclose(
        ray_out[columns].to_numpy(float), local_out[columns].to_numpy(float), atol=1e-5, equal_nan=True
    )


def test_two_process_ddp_training_on_cpu(tmp_path, tiny_model_dir, data_dir):
    output = tmp_path / "ddp-model"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "stance.cli", "train", "--config", str(REPO / "configs" / "sick.yaml"),
        "--set", f"model.base={tiny_model_dir}",
        "--set", f"data.train.0.path={data_dir / 'sick' / 'train.jsonl'}",
        "--set", "data.train.0.max_rows=256",
        "--set", f"data.dev.0.path={data_dir / 'sick' / 'dev.jsonl'}",
        "--set", "data.dev.0.max_rows=64",
        "--set", "training.epochs=2",
        "--set", "training.batch_size=16",
        "--set", "model.max_length=64",
        "--set", "training.ddp_backend=gloo",
        "--set", f"training.output_dir={output}",
    ]  # fmt: skip
    env = os.environ | {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    metadata = json.loads((output / "stance.json").read_text())
    # 256 rows / (2 processes x 16) = 8 steps per epoch, 16 in 2 epochs: each process saw half
    # the data (one process alone, or two that each read everything, would take 32).
    states = [json.loads(path.read_text()) for path in (output / "checkpoints").glob("checkpoint-*/trainer_state.json")]
    assert max(state["global_step"] for state in states) == 16
    assert max(state["epoch"] for state in states) == pytest.approx(2.0)
    assert metadata["metrics"]["dev"]["epoch"] in (pytest.approx(1.0), pytest.approx(2.0))  # the best checkpoint's
    assert "sick_macro_f1" in metadata["metrics"]["dev"]
    classifier = StanceClassifier.from_pretrained(output, device="cpu")
    assert len(classifier.predict([("a man is playing", "a man")])) == 1
    # Rank 0 alone wrote the model: one set of files, no leftovers from a second writer.
    assert sorted(p.name for p in output.iterdir() if not p.is_dir()) == sorted(
        ["config.json", "model.safetensors", "stance.json", "tokenizer.json", "tokenizer_config.json"]
    )


def test_ray_cli_applies_every_scoring_option(tmp_path, tiny_model_dir, local_ray, capsys):
    from stance.cli import main

    source = tmp_path / "in"
    source.mkdir()
    frame = pairs_frame(12)
    frame["label"] = "gold"
    frame.to_parquet(source / "part-0.parquet", index=False)
    code = main(
        ["score", "--engine", "ray", "--model", str(tiny_model_dir), "--input", str(source), "--output", str(tmp_path / "out"),
         "--abstain-threshold", "1.0", "--output-prefix", "pred_", "--device", "cpu"]
    )  # fmt: skip
    assert code == 0
    # --backend auto is fp32 under Ray, whatever each node's CPU: one output, one precision.
    assert "(backend torch)" in capsys.readouterr().err
    out = pd.concat(pd.read_parquet(p) for p in (tmp_path / "out").glob("*.parquet"))
    assert len(out) == 12 and set(out["label"]) == {"gold"}
    assert set(out["pred_label"]) == {"neutral"}  # threshold 1.0: nothing is confident enough
