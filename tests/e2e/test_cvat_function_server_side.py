"""A cvat_sdk auto-annotation function declared as a ``cvat-function`` model and run by the server
(``POST /api/lambda/requests``) annotates a task exactly as the unmodified ``cvat-cli task
auto-annotate --function-module`` running the same module on the client does on an identical task."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from cvat_sdk import make_client
from cvat_sdk.api_client import models
from PIL import Image

from tests.e2e.conftest import ADMIN, LiveServer

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
FUNCTION = "tests.e2e.frame_outline_function"
#: frames of different sizes, so that each frame's shapes differ
SIZES = [(64, 48), (40, 30), (100, 80)]


def _labels() -> list[models.PatchedLabelRequest]:
    return [
        models.PatchedLabelRequest(name="box", type="rectangle"),
        models.PatchedLabelRequest(name="outline", type="polygon"),
        models.PatchedLabelRequest(
            name="body",
            type="skeleton",
            sublabels=[models.SublabelRequest(name="top"), models.SublabelRequest(name="bottom")],
            svg='<circle data-label-name="top" data-node-id="1" cx="50" cy="10" r="1.5"></circle>'
            '<circle data-label-name="bottom" data-node-id="2" cx="50" cy="90" r="1.5"></circle>',
        ),
    ]


def _comparable(shapes: list[dict[str, Any]], names: dict[int, str]) -> list[tuple[Any, ...]]:
    """label name, type, points and frame of each shape (and of a skeleton's elements), in order."""

    def key(shape: dict[str, Any]) -> tuple[Any, ...]:
        elements = sorted(key(element) for element in shape.get("elements", []))
        return (shape["frame"], names[shape["label_id"]], shape["type"], shape["points"], elements)

    return sorted(key(shape) for shape in shapes)


@pytest.mark.annota_env(
    ANNOTA_CONFIG=str(HERE / "frame_outline_models.toml"), PYTHONPATH=str(HERE.parents[1])
)
def test_server_side_function_gives_the_shapes_cvat_cli_gives(
    live_server: LiveServer, tmp_path: Path
) -> None:
    images = []
    for number, size in enumerate(SIZES):
        path = tmp_path / f"frame{number}.png"
        Image.new("RGB", size, (60 * number, 90, 0)).save(path)
        images.append(str(path))
    with make_client("http://127.0.0.1", port=live_server.port, credentials=ADMIN) as client:
        local, remote = (
            client.tasks.create_from_data(
                models.TaskWriteRequest(name=name, labels=_labels()), resources=images
            )
            for name in ("cvat-cli", "server")
        )

    ran = live_server.cvat_cli("task", "auto-annotate", str(local.id), "--function-module", FUNCTION)
    assert ran.returncode == 0, ran.stderr

    with httpx.Client(base_url=live_server.url, auth=ADMIN, timeout=30) as http:
        call = http.post("/api/lambda/requests", json={"function": "frame-outline", "task": remote.id})
        assert call.status_code == 200, call.text
        deadline = time.monotonic() + 30
        while (status := http.get(f"/api/lambda/requests/{call.json()['id']}").json())["status"] not in (
            "finished",
            "failed",
        ):
            assert time.monotonic() < deadline, status
            time.sleep(0.1)
        assert status["status"] == "finished", status

        def shapes(task: int) -> list[tuple[Any, ...]]:
            names = {}
            for label in http.get("/api/labels", params={"task_id": task, "page_size": 100}).json()[
                "results"
            ]:
                names[label["id"]] = label["name"]
                names.update({sub["id"]: sub["name"] for sub in label.get("sublabels", [])})
            return _comparable(http.get(f"/api/tasks/{task}/annotations").json()["shapes"], names)

        server_side, client_side = shapes(remote.id), shapes(local.id)
    # three shapes on each frame, the same whichever side ran the function
    assert [shape[:3] for shape in client_side] == [
        (frame, name, kind)
        for frame in range(3)
        for name, kind in [("body", "skeleton"), ("box", "rectangle"), ("outline", "polygon")]
    ]
    assert server_side == client_side
