"""``GeminiClient``: the one place a ``google.genai.Client`` is built.

Built on first use (importing the SDK costs ~1 s, which an instance that never calls Gemini
should not pay), under a lock so two threads racing for the first call build one client, and
shared by the sync and the async (``client.aio``) paths. The SDK's own retry is off: retry
lives in one place (ADR 0001). The timeout is the whole request's, in seconds.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["GeminiClient"]


class GeminiClient:
    def __init__(
        self,
        api_key: str | None,
        *,
        base_url: str | None = None,
        timeout_s: float = 120.0,
        client: Any | None = None,
    ) -> None:
        self._api_key = api_key
        self.base_url = base_url
        self.timeout_s = timeout_s
        self._client = client
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never show the key
        return f"GeminiClient(base_url={self.base_url!r}, timeout_s={self.timeout_s})"

    @property
    def built(self) -> bool:
        """Whether the SDK client exists yet (what warm start-up is checked by)."""
        return self._client is not None

    @property
    def sync(self) -> Any:
        """The SDK client (``.models``, ``.batches``); built on first use."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    from google import genai
                    from google.genai import types

                    self._client = genai.Client(
                        api_key=self._api_key,
                        http_options=types.HttpOptions(
                            base_url=self.base_url,
                            timeout=int(self.timeout_s * 1000),  # the SDK wants milliseconds
                            retry_options=types.HttpRetryOptions(attempts=1),
                        ),
                    )
        return self._client

    @property
    def aio(self) -> Any:
        """The same client's async face (``client.aio``): one connection setup for both."""
        return self.sync.aio
