"""The http runner against a KServe v2 server and a SageMaker-style JSON endpoint on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from annota.core.formats.model import Shape
from annota.core.models.runner import DetectOptions, ModelDeclaration, ModelError
from annota.plugins.models import http, onnx_yolo
from tests.plugins.models.files import astronaut, iou, nudenet_model
from tests.plugins.models.kserve_server import TOKEN, Server, serve


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Server, str]]:
    pytest.importorskip("onnxruntime")
    instance = Server(str(nudenet_model()))
    with serve(instance) as url:
        yield instance, url


def frame(
    color: tuple[int, int, int], box: tuple[int, int, int, int], size: tuple[int, int] = (60, 80)
) -> np.ndarray:
    image = np.zeros((*size, 3), dtype=np.uint8)
    x1, y1, x2, y2 = box
    image[y1:y2, x1:x2] = color
    return image


RED, BLUE = (0, 0, 255), (255, 0, 0)  # BGR


def declare(url: str, name: str = "bright", **options: Any) -> ModelDeclaration:
    options = {"protocol": "kserve-v2", "url": url, "backoff": 0.05, **options}
    return ModelDeclaration(
        name=name, kind="http", labels=["red", "blue"], conf_threshold=0.5, batch_size=2, options=options
    )


def test_the_module_registers_the_kind() -> None:
    registered: dict[str, object] = {}
    http.register_model_runners(register=registered.__setitem__)
    assert registered == {"http": http.load}


def test_kserve_v2_detections_in_batches(server: tuple[Server, str]) -> None:
    instance, url = server
    model = http.load(declare(url))
    frames = [
        frame(RED, (10, 5, 30, 25)),
        frame(BLUE, (40, 20, 70, 50)),
        frame(RED, (0, 0, 80, 60)),
        frame(BLUE, (5, 5, 6, 6), (40, 40)),
    ]
    before = instance.calls.get("bright", 0)
    results = model.detect(frames, DetectOptions())
    # 2 + 1 requests for the 60×80 frames (batch_size 2), one for the 40×40 frame
    assert instance.calls["bright"] - before == 3
    assert [
        [(s.label, s.points, s.score, s.source) for s in shapes if isinstance(s, Shape)] for shapes in results
    ] == [
        [("red", [10, 5, 30, 25], 1.0, "auto")],
        [("blue", [40, 20, 70, 50], 1.0, "auto")],
        [("red", [0, 0, 80, 60], 1.0, "auto")],
        [("blue", [5, 5, 6, 6], 1.0, "auto")],
    ]
    model.close()


def test_kserve_v2_yolo_decoding_matches_the_local_runner(server: tuple[Server, str]) -> None:
    _, url = server
    local = onnx_yolo.load(
        ModelDeclaration(name="local", kind="onnx-yolo", path=str(nudenet_model()), conf_threshold=0.3)
    )
    names = [label.name for label in local.labels]
    remote = http.load(
        ModelDeclaration(
            name="remote",
            kind="http",
            labels=names,
            conf_threshold=0.3,
            options={
                "protocol": "kserve-v2",
                "url": url,
                "model_name": "yolo",
                "decoder": "yolo",
                "yolo": {"imgsz": 320},
            },
        )
    )
    image = astronaut()
    [found] = remote.detect([image], DetectOptions())
    [expected] = local.detect([image], DetectOptions())
    assert [(s.label, s.points) for s in found] == [
        (s.label, pytest.approx(s.points, abs=0.01)) for s in expected
    ]
    faces = [s for s in found if isinstance(s, Shape) and s.label.startswith("FACE")]
    assert faces and iou(faces[0].points, [173, 66, 274, 181]) > 0.5


def test_json_endpoint_with_request_and_response_mapping(server: tuple[Server, str]) -> None:
    _, url = server
    options = {
        "protocol": "json",
        "url": f"{url}/invocations",
        "image_format": "png",
        "request": {"instances": [{"b64": "$image"}]},
        "response": {
            "detections": "predictions",
            "box": "bbox",
            "box_format": "xywh",
            "label": "class",
            "score": "confidence",
        },
    }
    model = http.load(ModelDeclaration(name="sm", kind="http", labels=["red", "blue"], options=options))
    [[shape]] = model.detect([frame(BLUE, (12, 8, 40, 30))], DetectOptions())
    assert isinstance(shape, Shape) and (shape.label, shape.points, shape.score) == (
        "blue",
        [12, 8, 40, 30],
        1.0,
    )
    # a frame whose bright part fills a fifth of its box falls under the threshold
    sparse = frame(RED, (0, 0, 50, 10))
    sparse[:, 10:] = 0
    sparse[9, 49] = 255
    assert model.detect([sparse], DetectOptions()) == [[]]


def test_auth_headers_come_from_the_environment(
    server: tuple[Server, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    instance, url = server
    headers = {"Authorization": {"env": "TEST_MODEL_TOKEN"}, "X-Tenant": "lab"}
    with pytest.raises(ModelError, match="model 'private'.*TEST_MODEL_TOKEN is not set"):
        http.load(declare(url, "private", headers=headers))
    monkeypatch.setenv("TEST_MODEL_TOKEN", TOKEN)
    model = http.load(declare(url, "private", headers=headers))
    assert model.detect([frame(RED, (1, 1, 9, 9))], DetectOptions())[0][0].label == "red"
    assert instance.headers[-1]["x-tenant"] == "lab"
    monkeypatch.setenv("TEST_MODEL_TOKEN", "Bearer wrong")
    with pytest.raises(ModelError, match="model 'private'.*answered 401"):
        http.load(declare(url, "private", headers=headers)).detect(
            [frame(RED, (1, 1, 9, 9))], DetectOptions()
        )


def test_a_server_error_is_retried(server: tuple[Server, str]) -> None:
    instance, url = server
    [[shape]] = http.load(declare(url, "flaky")).detect([frame(RED, (1, 1, 9, 9))], DetectOptions())
    assert shape.label == "red" and instance.calls["flaky"] == 2


def test_timeouts_and_garbage_name_the_model(server: tuple[Server, str]) -> None:
    instance, url = server
    slow = http.load(declare(url, "slow", timeout=0.3, retries=1))
    with pytest.raises(
        ModelError,
        match=r"model 'slow' \(http\): POST .*/v2/models/slow/infer timed out after 0.3 s \(2 attempts\)",
    ):
        slow.detect([frame(RED, (1, 1, 9, 9))], DetectOptions())
    assert instance.calls["slow"] == 2
    with pytest.raises(ModelError, match="model 'garbage'.*not JSON: '<html>gateway says hi"):
        http.load(declare(url, "garbage")).detect([frame(RED, (1, 1, 9, 9))], DetectOptions())
    with pytest.raises(ModelError, match="model 'gone'.*could not be reached"):
        http.load(declare("http://127.0.0.1:9", "gone", retries=0)).detect(
            [frame(RED, (1, 1, 9, 9))], DetectOptions()
        )


def test_bad_options_name_the_model() -> None:
    with pytest.raises(ModelError, match="model 'x'.*options.protocol must be one of kserve-v2, json"):
        http.load(
            ModelDeclaration(
                name="x", kind="http", labels=["a"], options={"protocol": "grpc", "url": "http://h"}
            )
        )
    with pytest.raises(ModelError, match=r"model 'x'.*options: Object missing required field `url`"):
        http.load(ModelDeclaration(name="x", kind="http", labels=["a"], options={"protocol": "json"}))
    with pytest.raises(ModelError, match="model 'x'.*declare the `labels`"):
        http.load(ModelDeclaration(name="x", kind="http", options={"protocol": "json", "url": "http://h"}))
