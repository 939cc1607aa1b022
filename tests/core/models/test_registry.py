"""The model hooks and ``[[models]]``: a plugin's runner kind and its models reach the server, are
loaded once per process and run one at a time; every mistake is refused at start-up, naming the
plugin (or annota.toml), the model and the key."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

from annota.core import hookimpl
from annota.core.errors import ConfigError, NotFound
from annota.core.formats.model import LabelSpec, Shape, Tag
from annota.core.models.host import ModelHost
from annota.core.models.registry import ModelRegistry
from annota.core.models.runner import DetectOptions, Image, LoadedModel, ModelDeclaration, ModelError
from annota.runtime.app import create_app
from annota.runtime.settings import Settings, load_settings
from annota.runtime.state import AppState, collect_models, load_plugins


class Counting(LoadedModel):
    """Counts its loads and notices when two ``detect`` calls overlap."""

    loads = 0

    def __init__(self, declaration: ModelDeclaration) -> None:
        type(self).loads += 1
        super().__init__(declaration, [LabelSpec(name="thing", type="rectangle")])
        self.running = 0
        self.overlapped = False

    def detect(self, frames: Sequence[Image], options: DetectOptions) -> list[list[Tag | Shape]]:
        self.running += 1
        self.overlapped |= self.running > 1
        time.sleep(0.02)
        self.running -= 1
        return [[Shape(type="rectangle", label="thing", points=[0, 0, 1, 1], score=0.9)] for _ in frames]


class RunnerPlugin:
    @hookimpl
    def register_model_runners(self, register: Any) -> None:
        register("counting", Counting)


class ModelPackage:
    """What a pip-installed model package does: it contributes a model of an installed kind."""

    @hookimpl
    def register_models(self, register: Any) -> None:
        register(
            ModelDeclaration(name="packaged", kind="counting", description="from a package", batch_size=2)
        )


def test_hook_register_model_runners(annota_settings: Settings) -> None:
    Counting.loads = 0
    annota_settings.models = [{"name": "things", "kind": "counting", "conf_threshold": 0.3}]
    app = create_app(annota_settings, extra_plugins={"runner": RunnerPlugin()})
    with TestClient(app) as client:
        state: AppState = app.state.annota
        assert state.models.registry.kinds["counting"].plugin == "runner"
        # the built-in kinds are plugins too
        assert state.models.registry.kinds["opencv-haar"].plugin == "opencv"
        assert Counting.loads == 0  # nothing is loaded before it is used

        async def twice() -> list[Any]:
            frame = [np.zeros((4, 4, 3), dtype="uint8")]
            return await asyncio.gather(
                *(state.models.detect("things", frame, DetectOptions()) for _ in range(4))
            )

        assert client.portal is not None
        results = client.portal.call(twice)
        assert [len(result[0]) for result in results] == [1, 1, 1, 1]
        model = client.portal.call(state.models.load, "things")
        assert Counting.loads == 1 and not model.overlapped
        assert model.threshold(DetectOptions()) == 0.3


def test_hook_register_models(annota_settings: Settings) -> None:
    app = create_app(annota_settings, extra_plugins={"runner": RunnerPlugin(), "package": ModelPackage()})
    with TestClient(app) as client:
        state: AppState = app.state.annota
        assert state.models.registry.get("packaged").source == "package"
        listed = client.get("/api/server/plugins").json()
        assert listed["MODELS"] is True


def _collect(tmp_path: Path, toml: str, **plugins: Any) -> ModelRegistry:
    path = tmp_path / "annota.toml"
    path.write_text(toml)
    settings = load_settings(str(path), environ={})
    return collect_models(load_plugins(settings, extra=plugins, entry_points=False), settings)


def test_models_from_annota_toml(tmp_path: Path) -> None:
    registry = _collect(
        tmp_path,
        '[[models]]\nname = "a"\nkind = "counting"\nlabels = ["x"]\noptions = {depth = 3}\n',
        runner=RunnerPlugin(),
    )
    declaration = registry.get("a").declaration
    assert (declaration.labels, declaration.options, registry.get("a").source) == (
        ["x"],
        {"depth": 3},
        "annota.toml",
    )
    with pytest.raises(NotFound):
        registry.get("b")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[[models]]\nname = "a"\nkind = "counting"\ncolour = 1\n',
            "model 'a': Object contains unknown field `colour`",
        ),
        (
            '[[models]]\nname = "a"\nkind = "counting"\nbatch_size = "x"\n',
            "model 'a'.batch_size: Expected `int`",
        ),
        (
            '[[models]]\nname = "a"\nkind = "counting"\nbatch_size = 0\n',
            "model 'a'.batch_size: must be at least 1",
        ),
        ('[[models]]\nname = "a"\nkind = "counting"\nconf_threshold = 2\n', "model 'a'.conf_threshold"),
        ('[[models]]\nkind = "counting"\n', "models[0]: Object missing required field `name`"),
        ('[[models]]\nname = "a b"\nkind = "counting"\n', "model 'a b'.name"),
        (
            '[[models]]\nname = "a"\nkind = "onnx"\n',
            "annota.toml: model 'a'.kind: no model runner kind 'onnx'",
        ),
        (
            '[[models]]\nname = "a"\nkind = "counting"\n[[models]]\nname = "a"\nkind = "counting"\n',
            "model 'a' is already declared by annota.toml",
        ),
    ],
)
def test_a_bad_model_table_is_refused_naming_the_model_and_key(
    tmp_path: Path, toml: str, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        _collect(tmp_path, toml, runner=RunnerPlugin())
    assert message in str(error.value.detail)


def test_kinds_and_model_names_are_unique_across_plugins(tmp_path: Path) -> None:
    class Impostor:
        @hookimpl
        def register_model_runners(self, register: Any) -> None:
            register("counting", Counting)

    with pytest.raises(ConfigError) as error:
        _collect(tmp_path, "", runner=RunnerPlugin(), impostor=Impostor())
    assert "model runner kind 'counting' is already registered by plugin" in str(error.value.detail)
    with pytest.raises(ConfigError) as error:
        _collect(tmp_path, '[[models]]\nname = "packaged"\nkind = "counting"\n', runner=RunnerPlugin(),
                 package=ModelPackage())  # fmt: skip
    assert "plugin package: model 'packaged' is already declared by annota.toml" in str(error.value.detail)


def test_a_model_that_cannot_load_is_a_model_error_naming_it() -> None:
    def broken(declaration: ModelDeclaration) -> LoadedModel:
        raise OSError("no such file: weights.bin")

    registry = ModelRegistry()
    registry.register_kind("p", "broken", broken)
    registry.register_model("p", ModelDeclaration(name="bad", kind="broken"))
    host = ModelHost(registry)
    with pytest.raises(ModelError) as error:
        asyncio.run(host.load("bad"))
    assert error.value.status_code == 400
    assert "Model 'bad' could not be loaded: no such file: weights.bin" in str(error.value.detail)


def test_a_model_failing_on_a_frame_names_the_model_and_frame() -> None:
    class Failing(LoadedModel):
        def detect(self, frames: Sequence[Image], options: DetectOptions) -> list[list[Tag | Shape]]:
            raise ValueError("unexpected output shape (1, 7)")

    registry = ModelRegistry()
    registry.register_kind("p", "failing", lambda declaration: Failing(declaration, []))
    registry.register_model("p", ModelDeclaration(name="odd", kind="failing"))
    host = ModelHost(registry)
    frames = [np.zeros((2, 2, 3), dtype="uint8")]
    with pytest.raises(ModelError) as error:
        asyncio.run(host.detect("odd", frames, DetectOptions(), ["3 (street.jpg)"]))
    assert "Model 'odd' failed on frame 3 (street.jpg): ValueError: unexpected output shape" in str(
        error.value
    )
