"""The plugin's configuration: defaults, environment values and refused settings."""

from __future__ import annotations

import pytest

from annota.core.errors import ConfigError
from annota.core.plugins import convert_config
from annota.plugins.webhooks.config import DEFAULT_RETRY_SCHEDULE, Config


def test_defaults_are_cvats() -> None:
    config = convert_config(Config, {}, "plugins.webhooks")
    assert (
        config.retry_schedule == [5, 300, 1800, 10800, 86400, 86400, 86400, 86400] == DEFAULT_RETRY_SCHEDULE
    )
    assert (config.allow_private_targets, config.connect_timeout, config.read_timeout) == (False, 3, 10)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"retry_schedule": [1, -1]}, "must not be negative"),
        ({"read_timeout": 0}, "timeouts must be positive"),
        ({"lease": 0}, "lease must be positive"),
        ({"batch_size": 0}, "batch_size"),
        ({"allow_private_targets": "perhaps"}, "allow_private_targets"),
        ({"retries": 3}, "retries"),
    ],
)
def test_bad_settings_are_refused(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        convert_config(Config, values, "plugins.webhooks")
    assert "plugins.webhooks" in str(error.value.detail) and message in str(error.value.detail)
