"""Capped exponential backoff with jitter, for reconnecting to the API server."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Delays `initial * factor**n`, each scaled by a random factor in `[1 - jitter, 1 + jitter]`, never above
    `maximum`. `reset()` after a success starts over from `initial`."""

    def __init__(
        self,
        initial: float = 0.5,
        maximum: float = 30.0,
        factor: float = 2.0,
        jitter: float = 0.2,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < initial <= maximum:
            raise ValueError(f"backoff: need 0 < initial ({initial}) <= maximum ({maximum})")
        if factor < 1 or not 0 <= jitter < 1:
            raise ValueError(f"backoff: need factor >= 1 (got {factor}) and 0 <= jitter < 1 (got {jitter})")
        self.initial, self.maximum, self.factor, self.jitter = initial, maximum, factor, jitter
        self._rng = rng
        self._attempt = 0

    def next(self) -> float:
        """The delay before the next attempt; each call grows it until the cap."""
        base = min(self.maximum, self.initial * self.factor ** min(self._attempt, 64))
        self._attempt += 1
        spread = 1 - self.jitter + 2 * self.jitter * self._rng()
        return min(self.maximum, base * spread)

    def reset(self) -> None:
        self._attempt = 0

    @property
    def attempts(self) -> int:
        """Delays handed out since the last reset."""
        return self._attempt
