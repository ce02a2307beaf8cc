"""Handles on writes that finished at once or that run as several operations."""

from __future__ import annotations

from collections.abc import Sequence

from scaler.errors import AdapterError
from scaler.ports import ResizeHandle


class Done:
    """A handle on something that already finished (a synchronous Pexip write).

    ``changed`` is false when nothing had to be written (the value was already set)."""

    def __init__(self, changed: bool = True) -> None:
        self.changed = changed

    def done(self) -> bool:
        return True

    def result(self, timeout: float | None = None) -> None:
        return None

    def continuation_token(self) -> str | None:
        return None


class AllOf:
    """Several running operations as one handle: done when all are, failing if any does."""

    def __init__(self, handles: Sequence[ResizeHandle]) -> None:
        self._handles = list(handles)
        self.changed = bool(self._handles) and any(h.changed for h in self._handles)

    def done(self) -> bool:
        return all(h.done() for h in self._handles)

    def result(self, timeout: float | None = None) -> None:
        errors: list[AdapterError] = []
        for h in self._handles:
            try:
                h.result(timeout)
            except AdapterError as err:
                errors.append(err)
        if errors:
            raise errors[0]

    def continuation_token(self) -> str | None:
        tokens = [h.continuation_token() for h in self._handles]
        return tokens[0] if len(tokens) == 1 else None
