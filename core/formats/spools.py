"""Text an exporter writes per subset while it streams images: a ZIP takes one open member at a
time, so each subset's lines wait in a spooled temporary file (in memory up to 8 MiB, then on
disk) and are copied into the output once the items are done."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from types import TracebackType
from typing import IO

from annota.core.formats.output import Output

SPOOL_IN_MEMORY = 8 << 20


class SubsetSpools:
    """One spooled text file per subset, closed on leaving the ``with`` block."""

    def __init__(self) -> None:
        self._spools: dict[str, IO[str]] = {}

    def __enter__(self) -> SubsetSpools:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        for spool in self._spools.values():
            spool.close()

    def get(self, subset: str) -> IO[str]:
        """The text file of ``subset``, opened on first use."""
        spool = self._spools.get(subset)
        if spool is None:
            spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, mode="w+", encoding="utf-8")
            self._spools[subset] = spool
        return spool

    def write_subset(self, subset: str, stream: IO[str]) -> None:
        """Copy the text of ``subset`` (nothing when it has none) into ``stream``."""
        spool = self._spools.get(subset)
        if spool is not None:
            spool.seek(0)
            shutil.copyfileobj(spool, stream)

    def copy_to(self, output: Output, path: Callable[[str], str]) -> None:
        """Write each subset's text to ``path(subset)``, subsets in the order they first came."""
        for subset, spool in self._spools.items():
            spool.seek(0)
            with output.open_text(path(subset)) as stream:
                shutil.copyfileobj(spool, stream)
