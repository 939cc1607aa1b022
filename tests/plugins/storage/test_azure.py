"""The ``azure`` storage backend against Azurite on 127.0.0.1: the shared contract, SAS URLs a
plain HTTP client can follow, the credential forms (account key, SAS token, connection string,
anonymous), and failures (a missing container, a wrong key, a missing extra)."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

import httpx
import pytest

from annota.core.errors import ConfigError
from annota.core.plugins import PluginManager
from annota.core.storage import StorageError
from annota.plugins.storage.azure import MISSING_EXTRA, AzureStorage, Config, create, resolve_credentials
from tests.cloud_emulators import AZURITE_ACCOUNT, AZURITE_KEY, Azurite, require_module
from tests.plugins.storage.contract import *  # noqa: F403 - the shared contract, run on this backend
from tests.plugins.storage.contract import keys, run

require_module("obstore")


@pytest.fixture
def storage(azurite: Azurite) -> AzureStorage:
    return create(Config(**azurite.settings(azurite.create_container())), None)


def test_the_key_prefix_keeps_objects_inside_it(azurite: Azurite) -> None:
    container = azurite.create_container()
    tenant = create(Config(**azurite.settings(container, prefix="tenant-a/")), None)
    everything = create(Config(**azurite.settings(container)), None)

    async def scenario() -> None:
        await tenant.put("data/1/a.jpg", b"a", content_type="image/jpeg")
        assert await keys(tenant) == ["data/1/a.jpg"]
        assert (await tenant.stat("data/1/a.jpg")).content_type == "image/jpeg"
        assert await keys(everything) == ["tenant-a/data/1/a.jpg"]

    run(scenario)


@pytest.mark.parametrize("key", ["data/1/raw/a.jpg", "data/1/raw/a b#1 ü.jpg"])
def test_sas_urls_give_the_object_to_a_plain_http_client(azurite: Azurite, key: str) -> None:
    storage = create(Config(**azurite.settings(azurite.create_container(), prefix="p")), None)

    async def scenario() -> str | None:
        await storage.put(key, b"jpeg bytes")
        return await storage.presigned_url(key, dt.timedelta(minutes=5))

    url = run(scenario)
    assert url is not None and "sig=" in url and url.startswith(azurite.endpoint)
    response = httpx.get(url)
    assert (response.status_code, response.content) == (200, b"jpeg bytes")
    # the signature covers this blob only
    other = httpx.get(url.replace("/raw/", "/other/"))
    assert other.status_code == 403


def test_a_connection_string_configures_the_account_and_endpoint(azurite: Azurite) -> None:
    container = azurite.create_container()
    storage = create(Config(container=container, connection_string=azurite.connection_string()), None)

    async def scenario() -> bytes:
        await storage.put("a.txt", b"via connection string")
        return await storage.read("a.txt")

    assert run(scenario) == b"via connection string"


def test_a_sas_token_reaches_the_container_and_is_the_presigned_url(azurite: Azurite) -> None:
    container = azurite.create_container()
    keyed = create(Config(**azurite.settings(container)), None)
    # a SAS for the container is what an operator pastes from the portal: make one with the key
    token = container_sas(keyed, container)
    storage = create(Config(**azurite.settings(container, account_key="", sas_token=token)), None)

    async def scenario() -> str | None:
        await storage.put("a.txt", b"via sas")
        assert await storage.read("a.txt") == b"via sas"
        assert await keys(storage) == ["a.txt"]
        return await storage.presigned_url("a.txt", dt.timedelta(minutes=5))

    url = run(scenario)
    assert url is not None and httpx.get(url).content == b"via sas"


def container_sas(storage: AzureStorage, container: str) -> str:
    """A read/write/list SAS for a whole container (what the Azure portal hands out)."""
    import base64
    import hashlib
    import hmac
    from urllib.parse import urlencode

    start = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    expiry = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    fields = ["racwdl", start, expiry, f"/blob/{AZURITE_ACCOUNT}/{container}", "", "", "", "2023-11-03", "c"]
    fields += [""] * 7
    digest = hmac.new(base64.b64decode(AZURITE_KEY), "\n".join(fields).encode(), hashlib.sha256).digest()
    query = {"sv": "2023-11-03", "st": start, "se": expiry, "sr": "c", "sp": "racwdl"}
    query["sig"] = base64.b64encode(digest).decode()
    return urlencode(query)


# --- failures -------------------------------------------------------------------------------


def test_a_missing_container_fails_check_and_every_request(azurite: Azurite) -> None:
    storage = create(Config(**azurite.settings("no-such-container")), None)

    async def scenario() -> None:
        with pytest.raises(StorageError, match="azure container 'no-such-container' is not reachable"):
            await storage.check()
        with pytest.raises(StorageError, match="no-such-container"):
            await storage.get("a")
        with pytest.raises(StorageError, match="no-such-container"):
            await storage.put("a", b"x")

    run(scenario)


def test_a_wrong_account_key_fails_check(azurite: Azurite) -> None:
    wrong = "V3JvbmdXcm9uZ1dyb25nV3JvbmdXcm9uZ1dyb25nV3Jvbmc="
    storage = create(Config(**azurite.settings(azurite.create_container(), account_key=wrong)), None)

    async def scenario() -> None:
        with pytest.raises(StorageError, match="(?s)is not reachable.*403"):
            await storage.check()

    run(scenario)


def test_anonymous_access_reads_nothing_from_a_private_container(azurite: Azurite) -> None:
    container = azurite.create_container()
    storage = create(Config(**azurite.settings(container, account_key="", anonymous=True)), None)
    assert run(lambda: storage.presigned_url("a.jpg", dt.timedelta(minutes=1))) == (
        f"{azurite.endpoint}/{container}/a.jpg"
    )
    with pytest.raises(StorageError, match="is not reachable"):
        run(storage.check)


# --- configuration --------------------------------------------------------------------------


def test_the_configuration_is_validated() -> None:
    with pytest.raises(ConfigError, match="needs a container name"):
        create(Config(account_name="a"), None)
    with pytest.raises(ConfigError, match="account_name"):
        create(Config(container="c"), None)
    with pytest.raises(ConfigError, match="account_key or sas_token, not both"):
        create(Config(container="c", account_name="a", account_key=AZURITE_KEY, sas_token="sv=x"), None)
    with pytest.raises(ConfigError, match="not a base64 account key"):
        create(Config(container="c", account_name="a", account_key="not base64!"), None)
    with pytest.raises(ConfigError, match="anonymous"):
        create(Config(container="c", account_name="a", account_key=AZURITE_KEY, anonymous=True), None)
    with pytest.raises(ConfigError, match="connection_string"):
        create(Config(container="c", connection_string="AccountName=a;AccountKey", account_key="k"), None)


def test_connection_strings_of_the_portal_form_resolve() -> None:
    text = (
        f"DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={AZURITE_KEY};"
        "EndpointSuffix=core.windows.net"
    )
    credentials = resolve_credentials(Config(container="c", connection_string=text))
    assert (credentials.account_name, credentials.account_key) == ("acme", AZURITE_KEY)
    assert credentials.endpoint == "https://acme.blob.core.windows.net"
    # only an account name: the default credential chain, on Azure's public endpoint
    chain = resolve_credentials(Config(container="c", account_name="acme"))
    assert (chain.endpoint, chain.account_key, chain.sas_token) == (
        "https://acme.blob.core.windows.net",
        "",
        "",
    )


def test_settings_come_from_the_environment_with_secrets_from_files(tmp_path: Any) -> None:
    secret = tmp_path / "key"
    secret.write_text(AZURITE_KEY + "\n")
    manager = PluginManager()
    manager.load_entry_points()
    manager.configure(
        {"azure": {"account_key": {"file": str(secret)}}},
        {
            "ANNOTA_AZURE_CONTAINER": "media",
            "ANNOTA_AZURE_ACCOUNT_NAME": "acme",
            "ANNOTA_AZURE_TIMEOUT": "2.5",
        },
    )
    config = manager.config("azure")
    assert (config.container, config.account_name, config.timeout) == ("media", "acme", 2.5)
    assert config.account_key.strip() == AZURITE_KEY


def test_selecting_azure_without_obstore_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "obstore", None)
    with pytest.raises(ConfigError, match=r"pip install 'annota\[azure\]'"):
        create(Config(container="media", account_name="acme"), None)
    assert "annota[azure]" in MISSING_EXTRA


def test_config_show_masks_the_key_and_the_connection_string() -> None:
    from annota.runtime.settings import Settings, masked

    config = Config(container="c", account_name="acme", connection_string=f"AccountKey={AZURITE_KEY}")
    shown = masked(Settings(data_dir="/tmp/x"), {"azure": config})["plugins"]["azure"]
    assert shown["connection_string"] == "********" and shown["account_name"] == "acme"
    assert AZURITE_KEY not in repr(
        masked(Settings(data_dir="/tmp/x"), {"azure": Config(account_key=AZURITE_KEY)})
    )
