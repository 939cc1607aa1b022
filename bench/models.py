"""Frames per second of the ``onnx-yolo`` runner against a raw onnxruntime loop over the same
decoded frames, both measured in the same run. Target: the runner at 0.9x the raw loop or better.

The raw loop is what a script around the same export would do at least: resize every frame to the
input (``cv2.resize`` to 320×320, BGR → RGB, NCHW, /255) and ``session.run``, one batch at a time; it
does no letterbox, no decoding and no NMS. The runner does all three and builds shapes. The model
is the YOLOv8n export nudenet ships (320×320, 18 classes); the frames are crops of scikit-image's
astronaut photo at 640×480, decoded once before timing. Both use the same intra-op threads.

    python bench/models.py [--frames 200] [--batch 1] [--threads 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import onnxruntime

from annota.core.models.runner import DetectOptions, ModelDeclaration
from annota.plugins.models import onnx_yolo


def package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"{package} is not installed (pip install -e '.[test]')")
    return Path(spec.submodule_search_locations[0]) / relative


def frames(count: int) -> list[np.ndarray]:
    """``count`` different 640×480 BGR frames: sliding crops of the photo, some mirrored."""
    photo = cv2.imread(str(package_file("skimage", "data/astronaut.png")), cv2.IMREAD_COLOR)
    photo = cv2.resize(photo, (960, 960))
    result = []
    for index in range(count):
        x, y = (index * 7) % 320, (index * 5) % 480
        crop = np.ascontiguousarray(photo[y : y + 480, x : x + 640])
        result.append(np.ascontiguousarray(crop[:, ::-1]) if index % 2 else crop)
    return result


def best_rate(run: Callable[[], object], count: int, repeat: int) -> float:
    run()  # warm-up: the first runs allocate onnxruntime's arenas
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return count / best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    path = package_file("nudenet", "320n.onnx")
    video = frames(args.frames)
    declaration = ModelDeclaration(
        name="bench",
        kind="onnx-yolo",
        path=str(path),
        batch_size=args.batch,
        threads=args.threads,
        conf_threshold=0.25,
    )
    model = onnx_yolo.load(declaration)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
    session = onnxruntime.InferenceSession(
        str(path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    input_name = session.get_inputs()[0].name

    def raw() -> None:
        for start in range(0, len(video), args.batch):
            batch = np.stack([cv2.resize(frame, (320, 320)) for frame in video[start : start + args.batch]])
            blob = np.ascontiguousarray(batch[:, :, :, ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
            blob *= 1 / 255
            session.run(None, {input_name: blob})

    found = 0

    def runner() -> None:
        nonlocal found
        found = 0
        for start in range(0, len(video), args.batch):
            found += sum(
                len(shapes) for shapes in model.detect(video[start : start + args.batch], DetectOptions())
            )

    # interleaved, so both see the same machine load; the ratio is the median of the pairs'
    raw_rates, runner_rates = [], []
    for _ in range(args.repeat):
        raw_rates.append(best_rate(raw, len(video), 1))
        runner_rates.append(best_rate(runner, len(video), 1))
    ratios = sorted(r / b for r, b in zip(runner_rates, raw_rates, strict=True))
    ratio = ratios[len(ratios) // 2]
    print(f"frames {len(video)} (640x480), batch {args.batch}, intra-op threads {args.threads}")
    print(f"raw onnxruntime loop : {max(raw_rates):7.1f} frames/s (best of {args.repeat})")
    print(f"onnx-yolo runner     : {max(runner_rates):7.1f} frames/s ({found} shapes)")
    print(f"ratio                : {ratio:.3f}x median of pairs {', '.join(f'{r:.2f}' for r in ratios)}")
    print(f"target >= 0.9x       : {'OK' if ratio >= 0.9 else 'BELOW TARGET'}")


if __name__ == "__main__":
    main()
