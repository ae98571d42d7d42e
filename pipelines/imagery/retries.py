"""Retry with exponential backoff for provider calls; classify provider errors.

Transient failures (HTTP 429, quota, 5xx, deadline, connection reset) are retried; authentication
and permission failures fail fast with :class:`ProviderAuthError` — retrying will not help.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from sitewatch.errors import ImageryError, ProviderAuthError, TransientProviderError

T = TypeVar("T")
log = logging.getLogger(__name__)

TRANSIENT_MARKERS = ("429", "too many requests", "quota", "rate limit", "500", "502", "503", "504",
                     "internal error", "backend error", "deadline", "timed out", "unavailable", "connection")
AUTH_MARKERS = ("401", "403", "permission", "credential", "unauthenticated", "not authorized", "not signed up",
                "access denied", "please authorize", "authenticate")


def classify(exc: BaseException, provider: str) -> ImageryError:
    """Map any exception from a provider call onto sitewatch's hierarchy."""
    if isinstance(exc, ImageryError):
        return exc
    msg = str(exc).lower()
    if any(m in msg for m in AUTH_MARKERS):
        return ProviderAuthError(f"{provider}: authentication failed ({exc}); check the credentials "
                                 "(see docs/imagery.md) or use the stac/local provider")
    if isinstance(exc, (ConnectionError, TimeoutError)) or any(m in msg for m in TRANSIENT_MARKERS):
        return TransientProviderError(f"{provider}: transient failure ({exc})")
    return ImageryError(f"{provider}: request failed ({exc})")


def with_retries(
    call: Callable[[], T], *, provider: str, attempts: int = 5, base_delay: float = 1.0, max_delay: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``call``; retry transient failures with jittered exponential backoff."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - classified below
            err = classify(exc, provider)
            if not isinstance(err, TransientProviderError) or attempt == attempts:
                raise err from exc
            delay = min(max_delay, base_delay * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            log.warning("%s: attempt %d/%d failed (%s); retrying in %.1f s", provider, attempt, attempts, exc, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
