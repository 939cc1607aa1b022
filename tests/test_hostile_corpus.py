"""The hostile-input corpus under ``tests/data/hostile``: small files, exactly what its script makes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

CORPUS = Path(__file__).parent / "data" / "hostile"


def test_the_committed_corpus_is_what_the_script_makes_and_small() -> None:
    spec = importlib.util.spec_from_file_location("make_corpus", CORPUS / "make_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    made: dict[str, bytes] = module.build()
    committed = {
        path.relative_to(CORPUS).as_posix(): path.read_bytes()
        for path in CORPUS.rglob("*")
        if path.is_file() and path.suffix != ".py" and "__pycache__" not in path.parts
    }
    assert sorted(committed) == sorted(made)
    assert [name for name in made if made[name] != committed[name]] == []
    assert [name for name, data in committed.items() if len(data) >= 50_000] == []
