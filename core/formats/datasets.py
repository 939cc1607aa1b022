"""``StreamedDataset``: the ``Dataset`` importers return, built from generator functions.

An importer hands over *functions* that produce its items and tracks, so reading starts only when
the consumer iterates, and can be repeated (a server import validates in one pass and writes in
another; ``annota convert`` may read twice when the exporter needs tracks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from annota.core.formats.model import Item, LabelSpec, Track
from annota.core.formats.tracks import with_track_shapes


def _no_tracks() -> Iterator[Track]:
    return iter(())


class StreamedDataset:
    """A ``Dataset`` over generator functions. ``items()`` must yield frames in order; items
    whose ``image`` is set have their image read from that path."""

    def __init__(
        self,
        name: str,
        labels: Sequence[LabelSpec],
        items: Callable[[], Iterator[Item]],
        tracks: Callable[[], Iterator[Track]] = _no_tracks,
        *,
        size: int | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.labels = list(labels)
        self._items = items
        self._tracks = tracks
        self.size = size
        self.meta: Mapping[str, Any] = meta or {}

    def items(self, *, tracks: bool = False) -> Iterator[Item]:
        if tracks:
            return self._items()
        return with_track_shapes(self._items(), list(self._tracks()))

    def tracks(self) -> Iterator[Track]:
        return self._tracks()

    def image(self, item: Item) -> bytes | None:
        if item.image is None:
            return None
        try:
            return Path(item.image).read_bytes()
        except OSError:
            return None

    def image_extension(self, item: Item) -> str:
        for candidate in (item.image, item.name):
            if candidate:
                suffix = Path(candidate).suffix
                if suffix:
                    return suffix.lower()
        return ".jpg"


__all__ = ["StreamedDataset"]
