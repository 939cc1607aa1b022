"""The unmodified cvat-sdk's generated APIs for what CVAT's web UI calls besides projects and tasks:
quality and consensus settings, guides and their assets, client events, validation layouts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import cv2
import numpy as np
import pytest
from cvat_sdk import make_client
from cvat_sdk.api_client import models

from tests.e2e.conftest import ADMIN, LiveServer

pytestmark = pytest.mark.slow


def test_sdk_reads_and_changes_what_the_web_ui_does(live_server: LiveServer, tmp_path: Path) -> None:
    with make_client("http://127.0.0.1", port=live_server.port, credentials=ADMIN) as client:
        api = client.api_client
        task = client.tasks.create(models.TaskWriteRequest(name="guided", consensus_replicas=2))

        quality = api.quality_api.list_settings(task_id=task.id)[0].results
        assert (
            len(quality) == 1 and quality[0].iou_threshold == 0.4 and quality[0].target_metric == "accuracy"
        )
        changed, _ = api.quality_api.partial_update_settings(
            quality[0].id,
            patched_quality_settings_request=models.PatchedQualitySettingsRequest(oks_sigma=0.2),
        )
        assert changed.oks_sigma == 0.2
        assert api.quality_api.retrieve_settings(quality[0].id)[0].oks_sigma == 0.2

        (consensus,) = api.consensus_api.list_settings(task_id=task.id)[0].results
        updated, _ = api.consensus_api.partial_update_settings(
            consensus.id,
            patched_consensus_settings_request=models.PatchedConsensusSettingsRequest(iou_threshold=0.6),
        )
        assert updated.iou_threshold == 0.6

        layout, _ = api.tasks_api.retrieve_validation_layout(task.id)
        assert layout.mode is None

        guide, _ = api.guides_api.create(
            annotation_guide_write_request=models.AnnotationGuideWriteRequest(
                task_id=task.id, markdown="# Hi"
            )
        )
        image = tmp_path / "example.png"
        ok, encoded = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
        assert ok
        image.write_bytes(bytes(encoded))
        with image.open("rb") as file:
            asset, _ = api.assets_api.create(guide.id, file)
        assert asset.filename == "example.png" and asset.guide_id == guide.id
        _, response = api.assets_api.retrieve(str(asset.uuid), _parse_response=False)
        assert response.data == image.read_bytes()
        markdown = f"![example](/api/assets/{asset.uuid})"
        edited, _ = api.guides_api.partial_update(
            guide.id,
            patched_annotation_guide_write_request=models.PatchedAnnotationGuideWriteRequest(
                markdown=markdown
            ),
        )
        assert edited.markdown == markdown
        assert client.tasks.retrieve(task.id).guide_id == guide.id
        api.guides_api.destroy(guide.id)

        now = dt.datetime.now(dt.UTC)
        sent, _ = api.events_api.create(
            client_events_request=models.ClientEventsRequest(
                timestamp=now, events=[models.EventRequest(scope="load:job", timestamp=now, task_id=task.id)]
            )
        )
        assert sent.events[0].scope == "load:job" and sent.events[0].source == "client"
