"""Small ONNX models built in the test: an image input and outputs of chosen values in the layouts
real exports use, so decoding is checked against known boxes, keypoints and masks."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
helper, numpy_helper = onnx.helper, onnx.numpy_helper


def constant_model(
    path: Path,
    outputs: Mapping[str, np.ndarray],
    metadata: Mapping[str, str],
    *,
    size: tuple[int | str, int | str] = (64, 64),
    batch: int | str = "batch",
) -> Path:
    """An ONNX file with input ``images [batch, 3, h, w]`` whose every output is the given array
    (its leading 1 broadcast to the batch): ``0 × mean(images) + value``."""
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["spatial"], axes=[2, 3], keepdims=0),
        helper.make_node("ReduceMean", ["spatial"], ["per_image"], axes=[1], keepdims=0),
        helper.make_node("Mul", ["per_image", "zero"], ["zeros"]),
    ]
    initializers = [numpy_helper.from_array(np.zeros(1, dtype=np.float32), "zero")]
    graph_outputs = []
    for name, value in outputs.items():
        value = value.astype(np.float32)
        axes = np.arange(1, value.ndim, dtype=np.int64)
        initializers += [
            numpy_helper.from_array(value, f"{name}_value"),
            numpy_helper.from_array(axes, f"{name}_axes"),
        ]
        nodes += [
            helper.make_node("Unsqueeze", ["zeros", f"{name}_axes"], [f"{name}_zeros"]),
            helper.make_node("Add", [f"{name}_zeros", f"{name}_value"], [name]),
        ]
        graph_outputs.append(
            helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, [batch, *value.shape[1:]])
        )
    image = helper.make_tensor_value_info("images", onnx.TensorProto.FLOAT, [batch, 3, *size])
    graph = helper.make_graph(nodes, "constant", [image], graph_outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
