"""onnxruntime sessions as annota's declarations ask for them: execution providers in order of
preference (a missing one is an error, not a silent fall-back to CPU), intra-op threads, and files
that are not ONNX reported against the model's name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from annota.core.models.runner import ModelDeclaration

from ._common import model_error, model_file

if TYPE_CHECKING:
    import onnxruntime

CPU = "CPUExecutionProvider"


def _onnxruntime(declaration: ModelDeclaration) -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise model_error(declaration, "onnxruntime is not installed (pip install 'annota[onnx]')") from exc
    return onnxruntime


def open_session(declaration: ModelDeclaration) -> onnxruntime.InferenceSession:
    ort = _onnxruntime(declaration)
    path = model_file(declaration)
    available = list(ort.get_available_providers())
    for provider in declaration.providers:
        if provider not in available:
            raise model_error(
                declaration,
                f"execution provider {provider} is not available in this onnxruntime"
                f" (available: {', '.join(available)})",
            )
    # CPU stays last so operators a GPU provider lacks still run
    providers = [p for p in declaration.providers if p != CPU] + [CPU]
    if declaration.threads < 0:
        raise model_error(declaration, "`threads` must be 0 (onnxruntime's choice) or more")
    options = ort.SessionOptions()
    options.intra_op_num_threads = declaration.threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own classes (InvalidProtobuf, Fail, …)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise model_error(declaration, f"{path} is not a usable ONNX model: {reason}") from exc


def metadata(session: onnxruntime.InferenceSession) -> dict[str, str]:
    return dict(session.get_modelmeta().custom_metadata_map)


def fixed_dim(value: Any) -> int | None:
    """A dimension of an input's shape when it is fixed (dynamic ones are names or None)."""
    return value if isinstance(value, int) and value > 0 else None


def batches(frames: Sequence[Any], batch_dim: int | None, batch_size: int) -> list[list[int]]:
    """Frame indices grouped into the batches the model takes: up to ``batch_size`` when its batch
    dimension is dynamic, its size when fixed (a short last group is zero-filled by the caller)."""
    size = batch_dim or max(1, batch_size)
    return [list(range(start, min(start + size, len(frames)))) for start in range(0, len(frames), size)]
