"""Execution providers, threads and unusable files, for every onnxruntime-based kind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from annota.core.models.runner import ModelDeclaration, ModelError
from annota.plugins.models import onnx_yolo, ppocr_det
from tests.plugins.models.graphs import constant_model

ort = pytest.importorskip("onnxruntime")

LOADERS = {"onnx-yolo": onnx_yolo.load, "onnx-ppocr-det": ppocr_det.load}


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    return constant_model(
        tmp_path / "m.onnx", {"output0": np.zeros((1, 6, 3))}, {"names": "{0: 'a', 1: 'b'}"}
    )


def test_a_missing_provider_is_named_with_the_available_ones(model_file: Path) -> None:
    declaration = ModelDeclaration(
        name="gpu-model", kind="onnx-yolo", path=str(model_file), providers=["CUDAExecutionProvider"]
    )
    with pytest.raises(ModelError) as caught:
        onnx_yolo.load(declaration)
    message = str(caught.value)
    assert "model 'gpu-model'" in message and "CUDAExecutionProvider is not available" in message
    assert "CPUExecutionProvider" in message.split("available:")[1]


def test_providers_and_threads_reach_the_session(model_file: Path) -> None:
    declaration = ModelDeclaration(
        name="m", kind="onnx-yolo", path=str(model_file), providers=["CPUExecutionProvider"], threads=3
    )
    model = onnx_yolo.load(declaration)
    assert isinstance(model, onnx_yolo.OnnxYolo)
    assert model.session.get_providers() == ["CPUExecutionProvider"]
    assert model.session.get_session_options().intra_op_num_threads == 3


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_files_that_are_not_onnx_name_the_model(tmp_path: Path, kind: str) -> None:
    text = tmp_path / "weights.onnx"
    text.write_text("this is not a model\n")
    with pytest.raises(
        ModelError, match=rf"model 'broken' \({kind}\): .*weights.onnx is not a usable ONNX model"
    ):
        LOADERS[kind](ModelDeclaration(name="broken", kind=kind, path=str(text)))
    with pytest.raises(ModelError, match=r"model 'broken' .*model file '.*absent.onnx' does not exist"):
        LOADERS[kind](ModelDeclaration(name="broken", kind=kind, path=str(tmp_path / "absent.onnx")))
    with pytest.raises(ModelError, match=r"model 'broken' .*`path` \(the model file\) is required"):
        LOADERS[kind](ModelDeclaration(name="broken", kind=kind))


def test_a_detector_file_is_not_a_text_detector(model_file: Path) -> None:
    with pytest.raises(
        ModelError, match=r"model 'ocr' .*expected one NCHW input and one N×1×H×W probability map"
    ):
        ppocr_det.load(ModelDeclaration(name="ocr", kind="onnx-ppocr-det", path=str(model_file)))
