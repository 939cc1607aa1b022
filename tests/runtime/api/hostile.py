"""The hostile-input corpus (``tests/data/hostile``) and what a test needs around it: the files by
folder, a snapshot of everything the server keeps (rows of every table, files under its data
directory) to prove a refused input left nothing behind, and the check of one outcome."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from annota.core.db.tables import Base
from annota.runtime.settings import Settings, finalize

CORPUS = Path(__file__).resolve().parents[2] / "data" / "hostile"
#: tables whose rows are history rather than content: requests and events are kept by design
HISTORY = {"requests", "events", "sessions", "auth_tokens"}
#: small enough for the corpus's zip bomb to trip it
EXPANDED_LIMIT = 5_000_000


def corpus(folder: str, suffixes: Iterable[str] | None = None) -> dict[str, bytes]:
    wanted = set(suffixes) if suffixes is not None else None
    return {
        path.name: path.read_bytes()
        for path in sorted((CORPUS / folder).iterdir())
        if wanted is None or path.suffix in wanted
    }


def hostile_settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings whose archive limit the corpus's zip bomb trips."""
    return finalize(
        Settings(
            data_dir=str(tmp_path / "data"),
            database_url=database_url,
            secret_key="test-secret",
            max_archive_expanded_size=EXPANDED_LIMIT,
        )
    )


def requests_corpus() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CORPUS / "requests.json").read_text())
    return loaded


@dataclass(frozen=True)
class Snapshot:
    rows: dict[str, int]
    files: frozenset[str]

    def changes(self, after: Snapshot) -> list[str]:
        found = [
            f"{table}: {count} rows, now {after.rows[table]}"
            for table, count in self.rows.items()
            if after.rows[table] != count
        ]
        found += [f"file left behind: {name}" for name in sorted(after.files - self.files)]
        return found


def snapshot(client: Any, run_async: Callable[..., Any]) -> Snapshot:
    """Row counts of every content table and every file under the data directory."""
    state = client.app.state.annota

    async def count() -> dict[str, int]:
        async with state.sessionmaker() as session:
            return {
                table.name: int(await session.scalar(select(func.count()).select_from(table)) or 0)
                for table in Base.metadata.sorted_tables
                if table.name not in HISTORY
            }

    data_dir = Path(state.settings.data_dir)
    files = frozenset(
        str(path.relative_to(data_dir))
        for path in data_dir.rglob("*")
        if path.is_file() and not path.name.startswith("annota.db")
    )
    return Snapshot(run_async(count), files)


def outcome(client: Any, response: Any, timeout: float = 60.0) -> tuple[int, str]:
    """``(status, message)`` of a request refused at once (its 4xx or 5xx), or of the background
    request it started (200 finished, 422 failed)."""
    if response.status_code != 202:
        return response.status_code, response.text
    # polled often: hundreds of requests each refused in milliseconds
    path = f"/api/requests/{quote(response.json()['rq_id'], safe='')}"
    deadline = time.monotonic() + timeout
    while True:
        request = client.get(path).json()
        if request["status"] in ("finished", "failed"):
            return (200 if request["status"] == "finished" else 422), request["message"] or ""
        assert time.monotonic() < deadline, f"{path} still {request['status']}"
        time.sleep(0.005)


def refused(status: int, message: str, names: Iterable[str]) -> str | None:
    """Why the outcome is not a clear refusal naming one of ``names`` (``None``: it is)."""
    if status >= 500:
        return f"server error {status}: {message[:300]}"
    if status < 400:
        return f"accepted ({status}): {message[:300]}"
    if not any(name in message for name in names):
        return f"{status} without naming {' or '.join(names)}: {message[:300]}"
    return None


def unexpected_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Exceptions the server did not anticipate (a job or a request that raised), taken from the log."""
    found = [
        f"{record.name}: {record.getMessage()[:200]} ({record.exc_info[1]!r})"
        for record in caplog.records
        if record.exc_info is not None and record.levelno >= logging.ERROR
    ]
    caplog.clear()
    return found


def tus_metadata(filename: str) -> str:
    return f"filename {base64.b64encode(filename.encode()).decode()}"
