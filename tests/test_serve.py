"""`stance serve`: the real server in a subprocess on a free loopback port, spoken to over HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

STANCE = str(Path(sys.executable).with_name("stance"))
PAIRS = [
    ("the man is playing a guitar", "a man is not playing"),
    ("kids are playing in the yard", "some kids are outside"),
    ("ukraine tried to assassinate putin with drones", "we did not attack putin or moscow"),
    ("a woman", "a woman is eating food near the big house with two dogs"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, model: Path, *extra: str, env: dict | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [STANCE, "serve", "--model", str(model), "--port", str(self.port), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"} | (env or {}),
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited: {self.process.stderr.read()[-3000:]}")
            try:
                if request(self.url + "/ready")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("server not ready in 120 s")

    def stop(self, sig=signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=60)
        finally:
            if self.process.poll() is None:
                self.process.kill()


def request(url: str, body=None, *, raw: bytes | None = None, headers: dict | None = None, method=None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(
        url, data=data, method=method or ("POST" if data is not None else "GET"), headers=headers or {}
    )
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=120) as response:
            text = response.read().decode()
            return response.status, (json.loads(text) if "json" in response.headers.get("content-type", "") else text)
    except urllib.error.HTTPError as error:
        text = error.read().decode()
        try:
            payload = json.loads(text)
        except json.JSONDecodeError:
            payload = text
        return error.code, payload | {"_headers": dict(error.headers)} if isinstance(payload, dict) else payload


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    # fp32 (not --backend auto's bf16 on a CPU with bf16 instructions): answers are compared with
    # the fp32 classifier's to 1e-5, and the tiny random model's near-even probabilities flip in bf16.
    running = Server(
        tiny_model_dir, "--max-pairs", "8", "--max-chars", "2000", "--max-body-mb", "0.01", "--backend", "torch"
    )
    yield running
    running.stop()


def test_both_endpoints_agree_with_predict(server, tiny_classifier):
    expected = tiny_classifier.predict(PAIRS)
    status, body = request(
        server.url + "/v1/score",
        {"pairs": [{"premise": p, "hypothesis": h, "id": i} for i, (p, h) in enumerate(PAIRS)]},
    )
    assert status == 200
    results = body["results"]
    assert [r["id"] for r in results] == [0, 1, 2, 3]
    assert [r["label"] for r in results] == expected.labels
    got = np.array([[r["prob_support"], r["prob_contradict"], r["prob_neutral"]] for r in results])
    np.testing.assert_allclose(got, expected.probabilities, atol=1e-5)
    status, tei = request(server.url + "/predict", {"inputs": [list(pair) for pair in PAIRS], "truncate": True})
    assert status == 200 and len(tei) == 4
    for row, predictions in enumerate(tei):
        assert predictions[0]["label"] == expected.labels[row]
        assert [p["score"] for p in predictions] == sorted((p["score"] for p in predictions), reverse=True)
        by_label = {p["label"]: p["score"] for p in predictions}
        np.testing.assert_allclose(
            [by_label["support"], by_label["contradict"], by_label["neutral"]], expected.probabilities[row], atol=1e-5
        )
    status, single = request(server.url + "/predict", {"inputs": list(PAIRS[0])})
    assert status == 200 and single[0]["label"] == expected.labels[0]
    status, raw = request(server.url + "/predict", {"inputs": list(PAIRS[0]), "raw_scores": True})
    logits = tiny_classifier.logits(tiny_classifier.encode([PAIRS[0][0]], [PAIRS[0][1]]))[0]
    np.testing.assert_allclose(sorted(p["score"] for p in raw), sorted(logits), atol=1e-5)


def test_symmetric_and_per_pair_errors_as_stance_score_does(server, tiny_classifier):
    body = {"pairs": [{"premise": "", "hypothesis": "x"}, {"premise": PAIRS[2][0], "hypothesis": PAIRS[2][1]}]}
    status, result = request(server.url + "/v1/score", body | {"symmetric": True})
    assert status == 200
    first, second = result["results"]
    assert first["error"] == "empty premise" and first["label"] is None and first["prob_support"] is None
    assert second["error"] is None
    expected = tiny_classifier.predict([PAIRS[2]], symmetric=True)
    np.testing.assert_allclose(
        [second["prob_support"], second["prob_contradict"], second["prob_neutral"]],
        expected.probabilities[0],
        atol=1e-5,
    )


def test_order_is_kept_under_concurrency(server, tiny_classifier):
    requests_ = []
    rng = np.random.default_rng(0)
    for index in range(24):
        picks = rng.integers(0, len(PAIRS), size=int(rng.integers(1, 8)))
        requests_.append([{"premise": PAIRS[k][0], "hypothesis": PAIRS[k][1], "id": f"{index}-{j}"} for j, k in
                          enumerate(picks)])  # fmt: skip
    answers: dict[int, dict] = {}

    def send(index: int) -> None:
        answers[index] = request(server.url + "/v1/score", {"pairs": requests_[index]})

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests_))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    labels = dict(zip(PAIRS, tiny_classifier.predict(PAIRS).labels, strict=True))
    for index, pairs in enumerate(requests_):
        status, body = answers[index]
        assert status == 200
        assert [r["id"] for r in body["results"]] == [p["id"] for p in pairs]
        assert [r["label"] for r in body["results"]] == [labels[(p["premise"], p["hypothesis"])] for p in pairs]
    status, text = request(server.url + "/metrics")
    assert status == 200 and "stance_batch_pairs_bucket" in text and "stance_queue_pairs" in text
    merged = [line for line in text.splitlines() if line.startswith("stance_batch_pairs_count")]
    calls = float(merged[0].split()[-1])
    assert calls < 24 + 10, "concurrent requests should be merged into fewer scoring calls"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"pairs": [{"premise": "a"}]}, 422, "hypothesis"),
        ({"pairs": "nope"}, 422, "pairs"),
        ({"pairs": [{"premise": "a", "hypothesis": "b", "colour": 1}]}, 422, "colour"),
        ({"pairs": [{"premise": "a", "hypothesis": "b"}], "long_text": "summarise"}, 422, "long_text"),
        ({"pairs": [{"premise": "a", "hypothesis": "b"}] * 9}, 413, "9 pairs in one request; the limit is 8"),
        ({"pairs": [{"premise": "a " * 1001, "hypothesis": "b"}]}, 413, "pairs[0].premise has 2,002 characters"),
    ],
)
def test_bad_requests_get_their_status_and_a_message(server, body, status, message):
    got_status, got = request(server.url + "/v1/score", body)
    assert got_status == status, got
    assert message in json.dumps(got["detail"]), got


def test_malformed_json_oversize_body_and_tei_shapes(server):
    status, body = request(server.url + "/v1/score", raw=b'{"pairs": [')
    assert status == 422 and "json" in json.dumps(body["detail"]).lower()
    status, body = request(server.url + "/v1/score", raw=b" " * 20_000)
    assert status == 413 and "limit" in body["detail"]
    status, body = request(server.url + "/predict", {"inputs": ["just one text"]})
    assert status == 422 and "stance scores text pairs" in body["detail"]
    status, body = request(server.url + "/predict", {"inputs": [["a", "b", "c"]]})
    assert status == 422 and "inputs[0]" in body["detail"]
    long_pair = ["the dog is running in the park " * 60, "a dog is running"]
    status, body = request(server.url + "/predict", {"inputs": [long_pair]})
    assert status == 413 and '"truncate": true' in body["detail"]


def test_chunked_body_over_the_limit_is_refused(server):
    port = server.port
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b" " * 4096
        for _ in range(4):
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
        reply = sock.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 413"), reply[:200]


def test_info_health_ready(server):
    assert request(server.url + "/health") == (200, {"status": "ok"})
    assert request(server.url + "/ready") == (200, {"status": "ready"})
    status, info = request(server.url + "/info")
    assert status == 200 and info["labels"] == ["support", "contradict", "neutral"]
    assert info["limits"]["max_pairs_per_request"] == 8 and info["backend"] == "torch"
    assert request(server.url + "/openapi.json")[0] == 200


def test_client_helper(server, tiny_classifier):
    from stance.client import StanceClient, StanceServerError

    client = StanceClient(server.url)
    many = PAIRS * 5  # 20 pairs: three requests of at most 8
    results = client.score(many)
    assert [r["label"] for r in results] == tiny_classifier.predict(many).labels
    with pytest.raises(StanceServerError, match="HTTP 422"):
        client.score([{"premise": "a", "hypothesis": "b", "extra": 1}])


def test_queue_limit_gives_503_with_retry_after(tiny_model_dir):
    server = Server(tiny_model_dir, "--max-queue", "4", "--max-pairs", "4", "--max-wait-ms", "200")
    try:
        big = {"pairs": [{"premise": PAIRS[2][0] * 3, "hypothesis": PAIRS[2][1]}] * 4}
        answers = []
        threads = [
            threading.Thread(target=lambda: answers.append(request(server.url + "/v1/score", big))) for _ in range(6)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        statuses = sorted(status for status, _ in answers)
        assert 200 in statuses and 503 in statuses, statuses
        refused = next(body for status, body in answers if status == 503)
        assert refused["_headers"].get("retry-after") == "1" and "retry later" in refused["detail"]
    finally:
        server.stop()


def test_auth_on(tiny_model_dir, tmp_path):
    key = tmp_path / "key"
    key.write_text("s3cret\n")
    server = Server(tiny_model_dir, "--api-key-file", str(key))
    try:
        body = {"pairs": [{"premise": "a", "hypothesis": "b"}]}
        assert request(server.url + "/v1/score", body)[0] == 401
        assert request(server.url + "/v1/score", body, headers={"Authorization": "Bearer wrong"})[0] == 401
        assert request(server.url + "/v1/score", body, headers={"Authorization": "Bearer s3cret"})[0] == 200
        assert request(server.url + "/health")[0] == 200  # probes need no key
        from stance.client import StanceClient

        assert len(StanceClient(server.url, api_key="s3cret").score([("a", "b")])) == 1
    finally:
        server.stop()


def test_graceful_shutdown_finishes_requests_in_flight(tiny_model_dir):
    server = Server(tiny_model_dir, "--max-wait-ms", "300")
    answers = []
    body = {"pairs": [{"premise": p, "hypothesis": h} for p, h in PAIRS]}
    threads = [
        threading.Thread(target=lambda: answers.append(request(server.url + "/v1/score", body))) for _ in range(5)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.1)  # requests are in the batcher's 300 ms merge window
    code = server.stop(signal.SIGTERM)
    for thread in threads:
        thread.join()
    # uvicorn re-raises SIGTERM after its graceful shutdown, so the exit status says "terminated"
    assert code in (0, -signal.SIGTERM)
    assert len(answers) == 5 and all(status == 200 and len(b["results"]) == 4 for status, b in answers), answers


def test_serve_binds_loopback_by_default():
    from stance.cli import build_parser

    args = build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1"
