"""A task whose media stay in an S3 bucket (moto on 127.0.0.1), through the unmodified cvat-cli:
``task create NAME share manifest.jsonl --cloud_storage_id N --use_cache``, then ``task frames``
(chunks built from the bucket) and ``task export-dataset`` with the images."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from pathlib import Path

import httpx2 as httpx
import pytest
from PIL import Image

from tests.e2e.conftest import ADMIN, LiveServer
from tests.media import make_jpeg
from tests.moto_s3 import AUTH, Moto

pytestmark = [pytest.mark.slow, pytest.mark.annota_env(ANNOTA_CLOUD_STORAGE_ALLOW_PRIVATE_ENDPOINTS="true")]

SIZES = [(48, 32), (40, 30), (64, 48)]


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def test_a_task_from_a_bucket_manifest(live_server: LiveServer, moto: Moto, tmp_path: Path) -> None:
    pytest.importorskip("obstore")
    bucket = moto.create_bucket()
    lines = [{"version": "1.0"}, {"type": "images"}]
    for i, (width, height) in enumerate(SIZES):
        content = make_jpeg(width, height, 40 * i)
        httpx.put(
            f"{moto.endpoint}/{bucket}/set/img_{i}.jpg", content=content, headers={"Authorization": AUTH}
        )
        lines.append({"name": f"img_{i}", "extension": ".jpg", "width": width, "height": height,
                      "meta": {"related_images": []}, "checksum": ""})  # fmt: skip
    manifest = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    httpx.put(
        f"{moto.endpoint}/{bucket}/set/manifest.jsonl", content=manifest, headers={"Authorization": AUTH}
    )
    created = httpx.post(
        f"{live_server.url}/api/cloudstorages",
        auth=ADMIN,
        json={
            "provider_type": "AWS_S3_BUCKET",
            "resource": bucket,
            "display_name": "moto",
            "credentials_type": "KEY_SECRET_KEY_PAIR",
            "key": "testing",
            "secret_key": "testing",
            "specific_attributes": f"region=us-east-1&endpoint_url={moto.endpoint}",
            "manifests": ["set/manifest.jsonl"],
        },  # fmt: skip
    )
    assert created.status_code == 201, created.text
    storage_id = created.json()["id"]

    out = ok(live_server.cvat_cli("task", "create", "from bucket", "share", "set/manifest.jsonl",
                                  "--labels", json.dumps([{"name": "car"}]),
                                  "--cloud_storage_id", str(storage_id), "--use_cache",
                                  "--completion_verification_period", "0.2"))  # fmt: skip
    task_id = int(out.split()[-1])
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    ok(live_server.cvat_cli("task", "frames", str(task_id), "0", "2", "--outdir", str(frames_dir),
                            "--quality", "original"))  # fmt: skip
    saved = sorted(frames_dir.iterdir())
    assert len(saved) == 2
    assert sorted(Image.open(path).size for path in saved) == sorted([SIZES[0], SIZES[2]])
    dataset = tmp_path / "dataset.zip"
    ok(live_server.cvat_cli("task", "export-dataset", str(task_id), str(dataset), "--format", "COCO 1.0",
                            "--with-images", "true"))  # fmt: skip
    names = zipfile.ZipFile(io.BytesIO(dataset.read_bytes())).namelist()
    assert sorted(n for n in names if n.endswith(".jpg")) == [
        f"images/default/set/img_{i}.jpg" for i in range(3)
    ]
