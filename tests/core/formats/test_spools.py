"""Per-subset spooled text: each subset's lines land in its own file, in first-use order, and the
spools are closed when the block ends, also on an error."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from annota.core.formats.output import ZipOutput
from annota.core.formats.spools import SubsetSpools


def test_each_subset_is_copied_to_its_file_in_first_use_order(tmp_path: Path) -> None:
    target = tmp_path / "out.zip"
    with ZipOutput(target) as output, SubsetSpools() as spools:
        spools.get("train").write("a\n")
        spools.get("val").write("b\n")
        spools.get("train").write("c\n")
        # an image written between the lines: the ZIP only ever has one open member
        output.write("images/x.jpg", b"jpeg")
        spools.copy_to(output, lambda subset: f"{subset}/list.txt")
    with zipfile.ZipFile(target) as archive:
        assert archive.namelist() == ["images/x.jpg", "train/list.txt", "val/list.txt"]
        assert archive.read("train/list.txt") == b"a\nc\n"
        assert archive.read("val/list.txt") == b"b\n"


def test_the_spools_are_closed_on_an_error() -> None:
    with pytest.raises(RuntimeError), SubsetSpools() as spools:
        spool = spools.get("train")
        raise RuntimeError("export failed")
    assert spool.closed
