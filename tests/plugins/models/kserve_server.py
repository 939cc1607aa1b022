"""A small KServe v2 / SageMaker-style inference server on 127.0.0.1 for the ``http`` runner's
tests: Starlette under uvicorn in a thread, running tiny numpy models (and a real ONNX export)."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import cv2
import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

TOKEN = "Bearer s3cret"


def bright_box(image: np.ndarray) -> tuple[list[float], float, int]:
    """The box around the pixels brighter than 128, the share of bright pixels in it, and the class:
    0 when the bright part is mostly red (RGB order), else 1."""
    bright = image.max(axis=2) > 128
    ys, xs = np.nonzero(bright)
    if xs.size == 0:
        return [0, 0, 0, 0], 0.0, 0
    box = [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
    share = float(bright.sum()) / ((box[2] - box[0]) * (box[3] - box[1]))
    red = image[bright][:, 0].mean() > image[bright][:, 2].mean()
    return box, share, 0 if red else 1


class Server:
    def __init__(self, onnx_model: str | None = None) -> None:
        self.calls: dict[str, int] = {}
        self.headers: list[dict[str, str]] = []
        self.session: Any = None
        if onnx_model:
            import onnxruntime

            self.session = onnxruntime.InferenceSession(onnx_model, providers=["CPUExecutionProvider"])
        self.app = Starlette(
            routes=[
                Route("/v2/models/{name}/infer", self.infer, methods=["POST"]),
                Route("/invocations", self.invocations, methods=["POST"]),
            ]
        )

    async def infer(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.calls[name] = self.calls.get(name, 0) + 1
        self.headers.append(dict(request.headers))
        if name == "slow":
            await asyncio.sleep(1)
        if name == "garbage":
            return PlainTextResponse("<html>gateway says hi</html>")
        if name == "flaky" and self.calls[name] == 1:
            return PlainTextResponse("warming up", status_code=503)
        if name == "private" and request.headers.get("authorization") != TOKEN:
            return PlainTextResponse("no", status_code=401)
        body = await request.json()
        tensor = body["inputs"][0]
        array = np.asarray(
            tensor["data"], dtype=np.uint8 if tensor["datatype"] == "UINT8" else np.float32
        ).reshape(tensor["shape"])
        if name == "yolo":
            outputs = self.session.run(None, {self.session.get_inputs()[0].name: array})
            return JSONResponse(
                {
                    "outputs": [
                        {
                            "name": f"output{i}",
                            "datatype": "FP32",
                            "shape": list(o.shape),
                            "data": o.ravel().tolist(),
                        }
                        for i, o in enumerate(outputs)
                    ]
                }
            )
        found = [bright_box(image) for image in array]
        n = len(found)
        return JSONResponse(
            {
                "model_name": name,
                "outputs": [
                    {
                        "name": "boxes",
                        "datatype": "FP32",
                        "shape": [n, 1, 4],
                        "data": [v for box, _, _ in found for v in box],
                    },
                    {"name": "scores", "datatype": "FP32", "shape": [n, 1], "data": [s for _, s, _ in found]},
                    {
                        "name": "classes",
                        "datatype": "INT64",
                        "shape": [n, 1],
                        "data": [c for _, _, c in found],
                    },
                ],
            }
        )

    async def invocations(self, request: Request) -> Response:
        body = await request.json()
        data = np.frombuffer(base64.b64decode(body["instances"][0]["b64"]), dtype=np.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1]
        (x1, y1, x2, y2), share, cls = bright_box(image)
        predictions = [
            {"bbox": [x1, y1, x2 - x1, y2 - y1], "class": ["red", "blue"][cls], "confidence": share}
        ]
        return JSONResponse({"predictions": predictions})


@contextmanager
def serve(server: Server) -> Iterator[str]:
    """The server's base URL while it runs on a free loopback port."""
    config = uvicorn.Config(server.app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not runner.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test inference server did not start")
        time.sleep(0.01)
    port = runner.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        runner.should_exit = True
        thread.join(10)
