"""Loaded models of one process: each declared model is loaded the first time it is used and kept.

Loading and ``detect`` are blocking (a session created, a network run on the CPU), so both run in
a worker thread and leave the event loop free. A model runs one ``detect`` at a time: sessions
are not all safe to share between threads, and a model already keeps its cores busy (its
``threads`` setting). Locks are threading locks, so the host serves any event loop (the server's,
a CLI's). Failures become ``ModelError`` naming the model (and the frame, for ``detect``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence

from annota.core.formats.model import Shape, Tag
from annota.core.models.registry import ModelRegistry
from annota.core.models.runner import DetectOptions, Image, LoadedModel, ModelError

logger = logging.getLogger(__name__)


class ModelHost:
    """The loaded models of a server or worker process, over its registry."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self._loaded: dict[str, LoadedModel] = {}
        self._guard = threading.Lock()
        #: per model: held while it loads, then while it detects
        self._locks: dict[str, threading.Lock] = {}

    def _lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())

    def _load_blocking(self, name: str) -> LoadedModel:
        with self._lock(name):
            model = self._loaded.get(name)
            if model is not None:
                return model
            declaration = self.registry.get(name).declaration
            factory = self.registry.factory(name)
            try:
                model = factory(declaration)
            except ModelError:
                raise
            except Exception as exc:
                raise ModelError(f"Model {name!r} could not be loaded: {exc}") from exc
            if not isinstance(model, LoadedModel):
                raise ModelError(
                    f"Model {name!r} could not be loaded: its runner kind {declaration.kind!r} returned "
                    f"{type(model).__name__}, not a LoadedModel"
                )
            logger.info("model %s (%s) loaded", name, declaration.kind)
            self._loaded[name] = model
            return model

    async def load(self, name: str) -> LoadedModel:
        """The model, loaded now if this process has not loaded it yet (404 for an unknown name)."""
        model = self._loaded.get(name)
        if model is not None:
            return model
        self.registry.get(name)
        return await asyncio.to_thread(self._load_blocking, name)

    def _detect_blocking(
        self, model: LoadedModel, frames: Sequence[Image], options: DetectOptions, names: Sequence[str]
    ) -> list[list[Tag | Shape]]:
        with self._lock(model.name):
            try:
                results = model.detect(frames, options)
            except Exception as exc:
                where = names[0] if len(names) == 1 else f"{names[0]}..{names[-1]}"
                message = exc.detail if isinstance(exc, ModelError) else f"{type(exc).__name__}: {exc}"
                raise ModelError(f"Model {model.name!r} failed on frame {where}: {message}") from exc
        if len(results) != len(frames):
            raise ModelError(f"Model {model.name!r} answered {len(results)} results for {len(frames)} frames")
        return results

    async def detect(
        self,
        name: str,
        frames: Sequence[Image],
        options: DetectOptions,
        frame_names: Sequence[str] | None = None,
    ) -> list[list[Tag | Shape]]:
        """Run model ``name`` on ``frames`` (in batches of its ``batch_size``); one list of
        annotations per frame. ``frame_names`` name the frames in error messages."""
        model = await self.load(name)
        names = list(frame_names) if frame_names is not None else [str(i) for i in range(len(frames))]
        size = model.declaration.batch_size
        results: list[list[Tag | Shape]] = []
        for start in range(0, len(frames), size):
            batch = frames[start : start + size]
            results += await asyncio.to_thread(
                self._detect_blocking, model, batch, options, names[start : start + size]
            )
        return results

    def close(self) -> None:
        """Release every loaded model (a failing ``close`` is logged)."""
        with self._guard:
            loaded, self._loaded = self._loaded, {}
        for name, model in loaded.items():
            try:
                model.close()
            except Exception:
                logger.exception("model %s could not be closed", name)


__all__ = ["ModelHost"]
