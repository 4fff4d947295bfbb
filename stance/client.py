"""A small client for ``stance serve`` (standard library only, so any service can use it).

Example:
    >>> from stance.client import StanceClient                       # doctest: +SKIP
    >>> client = StanceClient("http://127.0.0.1:8000")               # doctest: +SKIP
    >>> client.score([("The bank kept rates unchanged.", "Rates did not change.")])[0]["label"]  # doctest: +SKIP
    'support'
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from stance.model.errors import StanceError


class StanceServerError(StanceError):
    """The server answered with an error status (the message is the server's)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class StanceClient:
    """Score pairs on a running ``stance serve``.

    Large inputs are sent in requests of at most the server's ``max_pairs_per_request``
    (read once from ``/info``); a full queue (503) is retried after the server's
    ``Retry-After``, up to ``retries`` times. Results come back in input order.
    """

    def __init__(self, url: str, *, api_key: str | None = None, timeout: float = 60.0, retries: int = 5) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.retries = retries
        self._max_pairs: int | None = None

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as error:
                text = error.read().decode("utf-8", "replace")
                try:
                    message = json.loads(text).get("detail", text)
                except (json.JSONDecodeError, AttributeError):
                    message = text
                if error.code == 503 and attempt < self.retries:
                    time.sleep(float(error.headers.get("Retry-After", "1") or 1))
                    continue
                raise StanceServerError(error.code, str(message)) from None
            except urllib.error.URLError as error:
                raise StanceError(f"{self.url}: cannot reach the server ({error.reason})") from None
        raise AssertionError("unreachable")

    def info(self) -> dict:
        """The server's model, labels, max length, backend and limits."""
        return self._request("GET", "/info")

    def score(
        self,
        pairs: Iterable[Sequence[str] | Mapping[str, Any]],
        *,
        symmetric: bool = False,
        long_text: str | None = None,
    ) -> list[dict]:
        """One result dict per pair, in order (``label``, ``prob_*``, ``truncated``, ``error``, ``id``).

        ``pairs``: (premise, hypothesis) tuples, or dicts with ``premise``, ``hypothesis``
        and optionally ``id``.
        """
        items = [
            dict(pair) if isinstance(pair, Mapping) else {"premise": pair[0], "hypothesis": pair[1]} for pair in pairs
        ]
        if self._max_pairs is None:
            self._max_pairs = int(self.info()["limits"]["max_pairs_per_request"])
        results: list[dict] = []
        for start in range(0, len(items), self._max_pairs):
            body = {"pairs": items[start : start + self._max_pairs], "symmetric": symmetric, "long_text": long_text}
            results.extend(self._request("POST", "/v1/score", body)["results"])
        return results
