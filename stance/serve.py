"""``stance serve``: the model behind HTTP, with dynamic batching, limits and metrics.

One model worker owns the classifier. Requests put their pairs on a bounded queue; the
worker takes the first waiting request, waits up to ``max_wait_ms`` for more requests
with the same options (up to ``max_batch_pairs`` pairs), scores them together in a
worker thread through the same code as ``stance score`` (``score_frame``: length-sorted,
token-budgeted batches, per-pair ``error`` values) and hands each request its rows, in
its own order. The event loop never runs the model, so health checks and new requests
are answered while a batch runs.

Endpoints: ``POST /v1/score`` (our shape), ``POST /predict`` (text-embeddings-inference's
pair shape), ``GET /health``, ``GET /ready``, ``GET /metrics`` (Prometheus), ``GET /info``;
OpenAPI docs at ``/docs``. Limits: pairs per request, characters per text, body bytes
(413), pending pairs in the queue (503 with ``Retry-After``); malformed bodies get 422
naming the field; an optional bearer token is compared in constant time.

Needs the optional extra: ``pip install 'stance[serve]'``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from stance.model.labels import LABELS

if TYPE_CHECKING:
    from stance.model.classifier import StanceClassifier

try:
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import JSONResponse, PlainTextResponse
    from pydantic import BaseModel, ConfigDict, Field
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError("stance serve needs FastAPI and uvicorn: pip install 'stance[serve]'") from error


@dataclass(frozen=True)
class ServeLimits:
    """Bounds on what one request and the whole server may hold.

    Attributes:
        max_pairs_per_request: more pairs in one request -> 413.
        max_chars_per_text: a longer premise or hypothesis -> 413.
        max_body_bytes: a larger request body -> 413 (checked while reading, so a huge
            body is never held in memory).
        max_queue_pairs: pairs waiting to be scored; a request that would exceed it -> 503
            with ``Retry-After`` (memory never grows without bound).
        max_batch_pairs: most pairs the worker merges into one scoring call.
        max_wait_ms: how long the worker waits for more requests to merge.
    """

    max_pairs_per_request: int = 256
    max_chars_per_text: int = 100_000
    max_body_bytes: int = 8 << 20
    max_queue_pairs: int = 4096
    max_batch_pairs: int = 128
    max_wait_ms: float = 5.0


# ---------------------------------------------------------------------------- request shapes
class PairIn(BaseModel):
    """One pair to score; ``id`` is echoed back."""

    model_config = ConfigDict(extra="forbid")
    premise: str | None = Field(description="the evidence side (an article body, a statement)")
    hypothesis: str | None = Field(description="the claim side (a headline, a claim)")
    id: str | int | None = Field(default=None, description="any id of yours, returned with the result")


class ScoreRequest(BaseModel):
    """``POST /v1/score``: the columns of ``stance score``, one result per pair in order."""

    model_config = ConfigDict(extra="forbid")
    pairs: list[PairIn]
    symmetric: bool = Field(default=False, description="score both orders and average (two statements)")
    long_text: str | None = Field(default=None, description="truncate, window or evidence (default: the model's)")


class PredictRequest(BaseModel):
    """``POST /predict`` in text-embeddings-inference's shape: a pair ``[a, b]`` or a batch
    ``[[a, b], ...]`` (single strings are refused: stance scores pairs)."""

    inputs: list[Any]
    truncate: bool = False
    raw_scores: bool = False


# ---------------------------------------------------------------------------- metrics
class Metrics:
    """Prometheus metrics in a registry of their own (several apps in one process stay apart)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "stance_requests", "HTTP requests by endpoint and status", ["endpoint", "status"], registry=self.registry
        )
        self.pairs = Counter("stance_pairs", "pairs scored", registry=self.registry)
        self.batch_pairs = Histogram(
            "stance_batch_pairs",
            "pairs per merged scoring call",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=self.registry,
        )
        self.queue_pairs = Gauge("stance_queue_pairs", "pairs waiting to be scored", registry=self.registry)
        self.latency = Histogram("stance_request_seconds", "request latency", ["endpoint"], registry=self.registry)
        self.inference = Histogram(
            "stance_inference_seconds", "seconds per merged scoring call", registry=self.registry
        )


# ---------------------------------------------------------------------------- the batcher
@dataclass
class _Job:
    frame: Any  # pandas DataFrame with premise, hypothesis (and id)
    options: tuple[bool, str, bool]  # symmetric, long_text, raw logits
    future: asyncio.Future


class QueueFull(Exception):
    """The queue holds ``max_queue_pairs`` pairs already."""


class Batcher:
    """A bounded queue of scoring jobs drained by one worker that merges compatible jobs."""

    def __init__(self, classifier: StanceClassifier, limits: ServeLimits, metrics: Metrics) -> None:
        self.classifier = classifier
        self.limits = limits
        self.metrics = metrics
        self.queue: asyncio.Queue[_Job] = asyncio.Queue()
        self.pending_pairs = 0
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stance-model")
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        """Start the worker task on the running event loop."""
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop the worker (after uvicorn has finished the requests in flight)."""
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
        self.executor.shutdown(wait=True)

    async def submit(self, frame, symmetric: bool, long_text: str, raw: bool = False):
        """Queue ``frame`` and wait for its scored rows (a DataFrame, and raw logits if asked)."""
        if self.pending_pairs + len(frame) > self.limits.max_queue_pairs:
            raise QueueFull
        self.pending_pairs += len(frame)
        self.metrics.queue_pairs.set(self.pending_pairs)
        job = _Job(frame, (symmetric, long_text, raw), asyncio.get_running_loop().create_future())
        await self.queue.put(job)
        return await job.future

    async def _run(self) -> None:
        while True:
            first = await self.queue.get()
            jobs, size = [first], len(first.frame)
            deadline = time.monotonic() + self.limits.max_wait_ms / 1000
            waiting: list[_Job] = []
            while size < self.limits.max_batch_pairs:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self.queue.get(), timeout)
                except TimeoutError:
                    break
                if job.options == first.options and size + len(job.frame) <= self.limits.max_batch_pairs:
                    jobs.append(job)
                    size += len(job.frame)
                else:
                    waiting.append(job)  # scored in a later call, in arrival order
            for job in waiting:
                self.queue.put_nowait(job)
            await self._score(jobs, size)

    async def _score(self, jobs: list[_Job], size: int) -> None:
        import pandas as pd

        symmetric, long_text, raw = jobs[0].options
        frame = pd.concat([job.frame for job in jobs], ignore_index=True)
        started = time.perf_counter()
        try:
            scored, logits = await asyncio.get_running_loop().run_in_executor(
                self.executor, _score_frame, self.classifier, frame, symmetric, long_text, raw
            )
        except Exception as error:  # the model failed: every waiting request gets the error
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(error)
        else:
            self.metrics.inference.observe(time.perf_counter() - started)
            self.metrics.batch_pairs.observe(size)
            self.metrics.pairs.inc(size)
            start = 0
            for job in jobs:
                end = start + len(job.frame)
                part = scored.iloc[start:end].reset_index(drop=True)
                if not job.future.done():
                    job.future.set_result((part, None if logits is None else logits[start:end]))
                start = end
        finally:
            self.pending_pairs -= size
            self.metrics.queue_pairs.set(self.pending_pairs)


def _score_frame(classifier: StanceClassifier, frame, symmetric: bool, long_text: str, raw: bool):
    """Runs in the model thread: ``score_frame`` as ``stance score`` does, plus raw logits for TEI."""
    from stance.model.scoring import score_frame

    scored = score_frame(classifier, frame, symmetric=symmetric, long_text=long_text)
    logits = None
    if raw:
        encoded = classifier.encode(list(frame["premise"]), list(frame["hypothesis"]))
        logits = classifier.logits(encoded)
    return scored, logits


# ---------------------------------------------------------------------------- the app
def _finite(value: Any) -> Any:
    """JSON has no NaN: a missing probability is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _rows(scored, long_text: str) -> list[dict]:
    columns = ["label", *(f"prob_{label}" for label in LABELS), "truncated", "error"]
    if long_text == "window":
        columns += ["window_start", "window_end"]
    if long_text == "evidence":
        columns += ["evidence_spans"]
    results = []
    for record in scored.to_dict(orient="records"):
        row = {"id": record.get("id")}
        for name in columns:
            value = record.get(name)
            if hasattr(value, "item"):
                value = value.item()
            row[name] = None if value is None else _finite(value)  # NaN (no score) and inf -> null
        if row.get("window_start") == -1:  # a pair that fit, or an error row
            row["window_start"] = row["window_end"] = None
        if isinstance(row.get("evidence_spans"), str):
            row["evidence_spans"] = json.loads(row["evidence_spans"])
        results.append(row)
    return results


def create_app(
    classifier: StanceClassifier,
    limits: ServeLimits | None = None,
    api_key: str | None = None,
    model_name: str = "default",
) -> FastAPI:
    """The ASGI app serving ``classifier`` (run it with uvicorn, or ``stance serve``)."""
    import pandas as pd

    from stance import __version__

    limits = limits or ServeLimits()
    metrics = Metrics()
    state: dict[str, Any] = {"ready": False}

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher = Batcher(classifier, limits, metrics)
        state["batcher"] = batcher
        batcher.start()
        # Warm up (first-call allocations, ONNX session) before /ready says yes.
        await asyncio.get_running_loop().run_in_executor(
            batcher.executor, classifier.predict, [("warm-up premise.", "warm-up hypothesis.")]
        )
        state["ready"] = True
        yield
        state["ready"] = False
        await batcher.stop()

    app = FastAPI(
        title="stance",
        version=__version__,
        description="Label text pairs as support, contradict or neutral.",
        lifespan=lifespan,
    )

    @app.middleware("http")
    async def guard(request: Request, call_next):
        endpoint = request.url.path
        started = time.perf_counter()
        if api_key is not None and endpoint not in ("/health", "/ready"):
            given = request.headers.get("authorization", "")
            expected = f"Bearer {api_key}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                response = JSONResponse(
                    {"detail": "missing or wrong bearer token (header: Authorization: Bearer <key>)"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                metrics.requests.labels(endpoint, "401").inc()
                return response
        response = await call_next(request)
        metrics.requests.labels(endpoint, str(response.status_code)).inc()
        metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
        return response

    # Outermost: a body over the limit is refused before any route reads it.
    app.add_middleware(BodyLimit, limit=limits.max_body_bytes, metrics=metrics)

    def check_pairs(pairs: list[tuple[Any, Any]]) -> None:
        if len(pairs) > limits.max_pairs_per_request:
            raise HTTPException(
                413,
                f"{len(pairs)} pairs in one request; the limit is {limits.max_pairs_per_request}: split the request",
            )
        for index, pair in enumerate(pairs):
            for role, text in zip(("premise", "hypothesis"), pair, strict=True):
                if isinstance(text, str) and len(text) > limits.max_chars_per_text:
                    raise HTTPException(
                        413,
                        f"pairs[{index}].{role} has {len(text):,} characters; the limit is {limits.max_chars_per_text:,}",
                    )

    async def run(frame, symmetric: bool, long_text: str, raw: bool = False):
        if not state["ready"]:
            raise HTTPException(503, "the model is still loading", headers={"Retry-After": "1"})
        try:
            return await state["batcher"].submit(frame, symmetric, long_text, raw)
        except QueueFull:
            raise HTTPException(
                503,
                f"the queue holds {state['batcher'].pending_pairs:,} pairs (limit {limits.max_queue_pairs:,}); retry later",
                headers={"Retry-After": "1"},
            ) from None

    def resolve_long_text(value: str | None) -> str:
        mode = value or classifier.metadata.long_text
        if mode not in ("truncate", "window", "evidence"):
            raise HTTPException(422, f"long_text must be 'truncate', 'window' or 'evidence', got {mode!r}")
        return mode

    @app.post("/v1/score", summary="Score pairs (the columns of `stance score`)")
    async def score(body: ScoreRequest) -> dict:
        """One result per pair, in request order: id, label, prob_support, prob_contradict,
        prob_neutral, truncated, error (an empty or missing text: no scores), and the
        deciding window's character span in window mode."""
        pairs = [(pair.premise, pair.hypothesis) for pair in body.pairs]
        check_pairs(pairs)
        long_text = resolve_long_text(body.long_text)
        if not pairs:
            return {"results": []}
        frame = pd.DataFrame(
            {
                "id": pd.array([pair.id for pair in body.pairs], dtype=object),
                "premise": pd.array([p for p, _ in pairs], dtype=object),
                "hypothesis": pd.array([h for _, h in pairs], dtype=object),
            }
        )
        scored, _ = await run(frame, body.symmetric, long_text)
        return {"results": _rows(scored, long_text)}

    @app.post("/predict", summary="text-embeddings-inference's /predict, for text pairs")
    async def predict(body: PredictRequest) -> Any:
        """TEI's request and response shapes: ``{"inputs": ["premise", "hypothesis"]}`` gives
        ``[{"score", "label"}, ...]`` (highest score first); a batch ``[[p, h], ...]`` gives a
        list of those. ``raw_scores`` returns logits instead of probabilities. As in TEI, a
        pair longer than the model's limit is refused (413) unless ``truncate`` is true."""
        single, pairs = _tei_pairs(body.inputs)
        check_pairs(pairs)
        if not pairs:
            return []
        frame = pd.DataFrame(
            {
                "premise": pd.array([p for p, _ in pairs], dtype=object),
                "hypothesis": pd.array([h for _, h in pairs], dtype=object),
            }
        )
        scored, logits = await run(frame, False, "truncate", body.raw_scores)
        errors = [(i, e) for i, e in enumerate(scored["error"]) if isinstance(e, str) and e]
        if errors:
            index, message = errors[0]
            raise HTTPException(422, f"inputs[{index}]: {message}")
        if not body.truncate:
            cut = [i for i, flag in enumerate(scored["truncated"]) if flag]
            if cut:
                raise HTTPException(
                    413,
                    f"inputs[{cut[0]}] is longer than the model's {classifier.max_length} tokens; "
                    f'pass "truncate": true to score it truncated',
                )
        predictions = []
        for row in range(len(scored)):
            values = (
                [float(v) for v in logits[row]]
                if body.raw_scores
                else [float(scored[f"prob_{label}"].iloc[row]) for label in LABELS]
            )
            ranked = sorted(zip(values, LABELS, strict=True), key=lambda item: -item[0])
            predictions.append([{"score": score, "label": label} for score, label in ranked])
        return predictions[0] if single else predictions

    @app.get("/health", summary="Liveness")
    async def health() -> dict:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/ready", summary="Readiness: model loaded and warm")
    async def ready() -> JSONResponse:
        """200 once the model is loaded and warmed up, 503 before (and while shutting down)."""
        if state["ready"]:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "loading"}, status_code=503, headers={"Retry-After": "1"})

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics_endpoint() -> PlainTextResponse:
        """Requests, pairs, batch sizes, queue depth and latency histograms (text format)."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/info", summary="Model and limits")
    async def info() -> dict:
        """Model, labels, max length, backend, version and the server's limits."""
        return {
            "model": model_name,
            "labels": list(LABELS),
            "max_length": classifier.max_length,
            "long_text": classifier.metadata.long_text,
            "backend": classifier.backend,
            "temperature": classifier.metadata.temperature,
            "version": __version__,
            "limits": asdict(limits),
        }

    return app


def _tei_pairs(inputs: list[Any]) -> tuple[bool, list[tuple[str, str]]]:
    """TEI's ``inputs``: ``[a, b]`` is one pair; ``[[a, b], ...]`` a batch. Single strings are refused."""
    if not inputs:
        return False, []
    if all(isinstance(item, str) for item in inputs):
        if len(inputs) != 2:
            raise HTTPException(
                422, f"inputs: a pair is [premise, hypothesis]; got {len(inputs)} string(s). stance scores text pairs"
            )
        return True, [(inputs[0], inputs[1])]
    pairs = []
    for index, item in enumerate(inputs):
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(t, str) for t in item)):
            raise HTTPException(
                422, f"inputs[{index}]: expected [premise, hypothesis] (two strings), got {str(item)[:80]}"
            )
        pairs.append((item[0], item[1]))
    return False, pairs


class BodyLimit:
    """ASGI middleware: 413 for a body over ``limit`` bytes, by its Content-Length or, for a
    chunked upload, as soon as the bytes read pass the limit (never buffered whole)."""

    def __init__(self, app, limit: int, metrics: Metrics) -> None:
        self.app = app
        self.limit = limit
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, send, f"request body is {int(declared):,} bytes; the limit is {self.limit:,}")
            return
        # Read the body here, stopping at the limit: FastAPI would turn an error raised while
        # it reads into a generic 400. The body kept is at most ``limit`` bytes.
        chunks, total, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            total += len(body)
            if total > self.limit:
                await self._refuse(scope, send, f"request body exceeds the limit of {self.limit:,} bytes")
                return
            chunks.append(body)
            more = message.get("more_body", False)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope, send, message: str) -> None:
        self.metrics.requests.labels(scope.get("path", ""), "413").inc()
        await JSONResponse({"detail": message}, status_code=413)(scope, None, send)


def serve(
    classifier: StanceClassifier,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    limits: ServeLimits | None = None,
    api_key: str | None = None,
    model_name: str = "default",
    graceful_seconds: float = 30.0,
) -> None:
    """Run the server until SIGINT/SIGTERM; requests in flight finish (up to ``graceful_seconds``)."""
    import uvicorn

    app = create_app(classifier, limits, api_key, model_name)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=graceful_seconds,
        limit_concurrency=None,
    )
