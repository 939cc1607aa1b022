"""``annota convert``, ``annota detect-format`` and ``annota formats``: real conversions through the
installed COCO, YOLO and PASCAL VOC plugins, and the command's own behaviour (format choice,
detection, output placement and clean-up, progress) with a small format defined here."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from PIL import Image

from annota.core.errors import FormatError
from annota.core.formats.datasets import StreamedDataset
from annota.core.formats.model import Item, LabelSpec, Shape
from annota.core.formats.output import Output
from annota.core.formats.registry import ExportOptions, Format, FormatRegistry, ImportOptions
from annota.runtime import convert as convert_module
from annota.runtime.cli import main
from annota.runtime.convert import ConvertedDataset, Progress

CATEGORIES = [{"id": 1, "name": "cat", "supercategory": ""}, {"id": 2, "name": "dog", "supercategory": ""}]
#: (image file, [(category id, [x, y, w, h])])
COCO_IMAGES = [
    ("img1.jpg", [(1, [10.0, 20.0, 30.0, 40.0]), (2, [100.0, 200.0, 50.0, 60.0])]),
    ("img2.jpg", [(2, [0.0, 0.0, 640.0, 480.0])]),
]


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args])


def write_coco(root: Path, annotations: list[dict[str, Any]] | None = None) -> Path:
    """A COCO dataset (annotation file only) under ``root``; returns the JSON file."""
    images = []
    generated: list[dict[str, Any]] = []
    for image_id, (file_name, boxes) in enumerate(COCO_IMAGES, 1):
        images.append({"id": image_id, "file_name": file_name, "width": 640, "height": 480})
        for category, (x, y, w, h) in boxes:
            generated.append(
                {
                    "id": len(generated) + 1,
                    "image_id": image_id,
                    "category_id": category,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                    "segmentation": [],
                }
            )
    document: dict[str, Any] = {
        "info": {},
        "licenses": [],
        "categories": CATEGORIES,
        "images": images,
        "annotations": generated if annotations is None else annotations,
    }
    path = root / "annotations" / "instances_default.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(document, indent=1))
    return path


def expected_boxes() -> dict[str, list[tuple[str, list[float]]]]:
    names = {category["id"]: category["name"] for category in CATEGORIES}
    return {
        Path(file_name).stem: [(str(names[category]), box) for category, box in boxes]
        for file_name, boxes in COCO_IMAGES
    }


def only(paths: Iterator[Path]) -> Path:
    found = list(paths)
    assert len(found) == 1, found
    return found[0]


# --- real formats ----------------------------------------------------------------------------


def test_coco_to_yolo_writes_normalised_boxes_per_image(tmp_path: Path) -> None:
    write_coco(tmp_path / "coco")
    out = tmp_path / "yolo"
    result = invoke("convert", "-if", "COCO 1.0", "-i", tmp_path / "coco", "-f", "YOLO 1.1", "-o", out)
    assert result.exit_code == 0, result.output
    names = only(out.rglob("obj.names")).read_text().split()
    assert sorted(names) == ["cat", "dog"]
    for stem, boxes in expected_boxes().items():
        lines = only(out.rglob(f"{stem}.txt")).read_text().split("\n")
        rows = sorted(
            (names[int(fields[0])], [float(value) for value in fields[1:]])
            for fields in (line.split() for line in lines if line.strip())
        )
        expected = sorted(
            (label, [(x + w / 2) / 640, (y + h / 2) / 480, w / 640, h / 480]) for label, (x, y, w, h) in boxes
        )
        assert [label for label, _ in rows] == [label for label, _ in expected]
        for (_, got), (_, want) in zip(rows, expected, strict=True):
            assert got == pytest.approx(want, abs=1e-5)
    # the summary goes to stderr; no progress line when stderr is not a terminal
    assert "Converted 2 items from COCO 1.0 to YOLO 1.1" in result.stderr
    assert "\r" not in result.stderr and result.stdout == ""


def test_coco_to_voc_by_alias_writes_one_xml_per_image(tmp_path: Path) -> None:
    write_coco(tmp_path / "coco")
    out = tmp_path / "voc"
    result = invoke(
        "convert", "-if", "coco", "-i", tmp_path / "coco", "-f", "pascal voc 1.1", "-o", out, "-q"
    )
    assert result.exit_code == 0, result.output
    assert result.output == ""
    for stem, boxes in expected_boxes().items():
        tree = ET.parse(only(out.rglob(f"Annotations/{stem}.xml")))
        assert tree.findtext("size/width") == "640" and tree.findtext("size/height") == "480"
        found = sorted(
            (
                obj.findtext("name") or "",
                [float(obj.findtext(f"bndbox/{key}") or "nan") for key in ("xmin", "ymin", "xmax", "ymax")],
            )
            for obj in tree.iter("object")
        )
        want = sorted((label, [x, y, x + w, y + h]) for label, (x, y, w, h) in boxes)
        assert [label for label, _ in found] == [label for label, _ in want]
        for (_, got), (_, box) in zip(found, want, strict=True):
            assert got == pytest.approx(box, abs=1e-3)


def test_subprocess_detects_coco_from_a_single_file_and_writes_a_zip(tmp_path: Path) -> None:
    annotations = write_coco(tmp_path / "coco")
    out = tmp_path / "out" / "voc.zip"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "annota.runtime.cli",
            "convert",
            "-i",
            str(annotations),
            "-f",
            "voc",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ANNOTA_CONFIG": ""},
    )
    assert completed.returncode == 0, completed.stderr
    assert "Detected COCO 1.0" in completed.stderr
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        xml = next(name for name in names if name.endswith("Annotations/img1.xml"))
        tree = ET.fromstring(archive.read(xml))
    assert sorted(obj.findtext("name") or "" for obj in tree.iter("object")) == ["cat", "dog"]
    # nothing but the result is left next to it
    assert [path.name for path in out.parent.iterdir()] == ["voc.zip"]


def test_convert_help_starts_without_the_server_stack() -> None:
    code = (
        "import sys\n"
        "from annota.runtime.cli import main\n"
        "try:\n    main(['convert', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(name for name in ('sqlalchemy', 'starlette', 'numpy', 'PIL') if name in sys.modules))"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert "--conv-mask-to-poly" in completed.stdout
    assert completed.stdout.splitlines()[-1] == "[]"


def test_detect_format_ranks_coco_first(tmp_path: Path) -> None:
    write_coco(tmp_path / "coco")
    result = invoke("detect-format", tmp_path / "coco", "--json")
    assert result.exit_code == 0, result.output
    candidates = json.loads(result.stdout)
    assert candidates[0]["format"] == "COCO 1.0" and candidates[0]["confidence"] >= 0.5
    text = invoke("detect-format", tmp_path / "coco")
    assert text.stdout.splitlines()[0].split(maxsplit=1)[1] == "COCO 1.0"


def test_unknown_format_name_lists_the_known_ones(tmp_path: Path) -> None:
    write_coco(tmp_path / "coco")
    result = invoke("convert", "-i", tmp_path / "coco", "-f", "nonsense 9", "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert "Unknown format 'nonsense 9'" in result.output
    assert "'COCO 1.0'" in result.output and "'YOLO 1.1'" in result.output
    assert not (tmp_path / "out").exists()


def test_malformed_json_names_the_file_without_a_traceback(tmp_path: Path) -> None:
    path = write_coco(tmp_path / "coco")
    path.write_text('{"images": [{"id": 1,\n "file_name": }]}')
    out = tmp_path / "out"
    result = invoke("convert", "-if", "COCO 1.0", "-i", tmp_path / "coco", "-f", "YOLO 1.1", "-o", out)
    assert result.exit_code == 1
    assert "instances_default.json" in result.output
    assert "Traceback" not in result.output
    assert not out.exists() and os.listdir(tmp_path) == ["coco"]


def test_bad_annotation_names_the_file_and_annotation(tmp_path: Path) -> None:
    bad = {"id": 7, "image_id": 1, "category_id": 1, "bbox": [10, 10, -5, 4], "area": 0, "iscrowd": 0}
    write_coco(tmp_path / "coco", annotations=[bad])
    out = tmp_path / "out.zip"
    result = invoke("convert", "-if", "COCO 1.0", "-i", tmp_path / "coco", "-f", "voc", "-o", out)
    assert result.exit_code == 1
    assert "instances_default.json" in result.output and "annotation" in result.output
    assert not out.exists() and os.listdir(tmp_path) == ["coco"]


# --- the command's behaviour, with a format defined here -------------------------------------


def lines_format(name: str = "Lines", score: float = 1.0, fail_at: int | None = None) -> Format:
    """``items.txt`` with one ``name label x1 y1 x2 y2`` line per item; the exporter writes one file
    per item (``items/<id>.txt``) and, with ``fail_at``, fails on that item after writing some."""

    def load(root: Path, options: ImportOptions) -> StreamedDataset:
        source = root / "items.txt"

        def items() -> Iterator[Item]:
            for line in source.read_text().splitlines():
                item, label, *box = line.split()
                yield Item(
                    name=item, shapes=[Shape(type="rectangle", label=label, points=list(map(float, box)))]
                )

        labels = sorted({line.split()[1] for line in source.read_text().splitlines()})
        return StreamedDataset("lines", [LabelSpec(name=label) for label in labels], items)

    def export(dataset: Any, output: Output, options: ExportOptions) -> None:
        for index, item in enumerate(dataset.items()):
            if index == fail_at:
                raise FormatError("cannot write this one", file="items.txt", item=item.name, annotation=0)
            lines = [f"{item.frame} {item.width} {item.height}"]
            lines += [f"{shape.label} {' '.join(map(str, shape.points))}" for shape in item.shapes]
            output.write(f"items/{item.id}.txt", "\n".join(lines).encode())

    return Format(
        name=name,
        version="1.0",
        exporter=export,
        importer=load,
        detect=lambda root: score if (root / "items.txt").exists() else 0.0,
        carries=frozenset({"rectangle"}),
        aliases=(name.lower(),),
    )


@pytest.fixture
def lines_input(tmp_path: Path) -> Path:
    source = tmp_path / "input"
    source.mkdir()
    (source / "items.txt").write_text("a.png cat 1 2 3 4\nb.png dog 5 6 7 8\nc.png cat 0 0 1 1\n")
    return source


def use_formats(monkeypatch: pytest.MonkeyPatch, *formats: Format) -> None:
    registry = FormatRegistry()
    for fmt in formats:
        registry.register("tests", fmt)
    monkeypatch.setattr(convert_module, "load_formats", lambda config=None, needs=(): registry)


def test_detected_format_is_used_when_clearly_ahead(
    monkeypatch: pytest.MonkeyPatch, lines_input: Path, tmp_path: Path
) -> None:
    use_formats(monkeypatch, lines_format(score=0.9), lines_format("Other", score=0.3))
    result = invoke("convert", "-i", lines_input, "-f", "Other 1.0", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "Detected Lines 1.0 (confidence 0.90)" in result.stderr
    # the frame index and the order come from the input's order
    assert (tmp_path / "out/items/b.txt").read_text().splitlines() == ["1 None None", "dog 5.0 6.0 7.0 8.0"]


def test_close_or_weak_detection_asks_for_the_input_format(
    monkeypatch: pytest.MonkeyPatch, lines_input: Path, tmp_path: Path
) -> None:
    use_formats(monkeypatch, lines_format(score=0.9), lines_format("Other", score=0.8))
    result = invoke("convert", "-i", lines_input, "-f", "Lines 1.0", "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert "-if" in result.output and "'Lines 1.0' (0.90), 'Other 1.0' (0.80)" in result.output

    use_formats(monkeypatch, lines_format(score=0.4))
    weak = invoke("convert", "-i", lines_input, "-f", "Lines 1.0", "-o", tmp_path / "out")
    assert weak.exit_code == 1 and "'Lines 1.0' (0.40)" in weak.output

    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = invoke("convert", "-i", empty, "-f", "Lines 1.0", "-o", tmp_path / "out")
    assert nothing.exit_code == 1 and "No known format recognises" in nothing.output
    assert not (tmp_path / "out").exists()


def test_detect_format_without_a_match_exits_1(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    use_formats(monkeypatch, lines_format())
    result = invoke("detect-format", tmp_path)
    assert result.exit_code == 1 and "No known format recognises" in result.output


def test_failed_conversion_removes_the_partial_output(
    monkeypatch: pytest.MonkeyPatch, lines_input: Path, tmp_path: Path
) -> None:
    use_formats(monkeypatch, lines_format(), lines_format("Broken", fail_at=2))
    results = tmp_path / "results"
    for out in (results / "dir", results / "archive.zip"):
        result = invoke("convert", "-if", "lines", "-i", lines_input, "-f", "broken", "-o", out)
        assert result.exit_code == 1
        assert "items.txt: item 'c.png': annotation 0: cannot write this one" in result.output
        assert "Traceback" not in result.output
    # neither the outputs nor any partially written file is left
    assert list(results.iterdir()) == []


def test_existing_output_is_refused_or_replaced_only_on_success(
    monkeypatch: pytest.MonkeyPatch, lines_input: Path, tmp_path: Path
) -> None:
    use_formats(monkeypatch, lines_format(), lines_format("Broken", fail_at=1))
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    refused = invoke("convert", "-if", "lines", "-i", lines_input, "-f", "lines", "-o", out)
    assert refused.exit_code == 1 and "--overwrite" in refused.output

    failed = invoke("convert", "-if", "lines", "-i", lines_input, "-f", "broken", "-o", out, "--overwrite")
    assert failed.exit_code == 1
    assert [path.name for path in out.iterdir()] == ["keep.txt"]

    replaced = invoke("convert", "-if", "lines", "-i", lines_input, "-f", "lines", "-o", out, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert sorted(path.name for path in (out / "items").iterdir()) == ["a.txt", "b.txt", "c.txt"]
    assert not (out / "keep.txt").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["input", "out"]

    inside = invoke("convert", "-if", "lines", "-i", lines_input, "-f", "lines", "-o", lines_input / "out")
    assert inside.exit_code == 1 and "inside the input directory" in inside.output


def test_formats_lists_names_directions_and_capabilities(monkeypatch: pytest.MonkeyPatch) -> None:
    import_only = Format(name="Reader", version="2.0", importer=lines_format().importer, aliases=("rd",))
    use_formats(monkeypatch, lines_format(), import_only)
    listed = json.loads(invoke("formats", "--json").stdout)
    assert [(row["name"], row["import"], row["export"]) for row in listed] == [
        ("Lines 1.0", True, True),
        ("Reader 2.0", True, False),
    ]
    assert listed[0]["carries"] == ["rectangle"] and listed[1]["aliases"] == ["rd"]
    table = invoke("formats").stdout.splitlines()
    assert table[0].split() == ["NAME", "IMPORT", "EXPORT", "ALIASES", "CARRIES"]
    assert table[2].split() == ["Reader", "2.0", "ZIP", "-", "rd"]


def test_converted_dataset_counts_items_and_fills_frame_and_size(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    Image.new("RGB", (33, 21)).save(image)
    items = [
        Item(name="a.png", image=str(image)),
        Item(name="b.png", frame=7, width=5, height=6),
        Item(name="c.png"),
    ]
    inner = StreamedDataset("d", [], lambda: iter(items), size=3)
    stream = io.StringIO()
    progress = Progress(stream, inner.size, "Converting", interval=0)
    converted = ConvertedDataset(inner, progress.update)
    seen = [(item.frame, item.width, item.height) for item in converted.items()]
    progress.finish(converted.count)
    assert seen == [(0, 33, 21), (7, 5, 6), (2, None, None)]
    assert converted.count == 3 and converted.size == 3 and converted.name == "d"
    assert stream.getvalue().split("\r")[1:] == [
        "Converting: 1/3 items (33%)",
        "Converting: 2/3 items (66%)",
        "Converting: 3/3 items (100%)",
        "Converting: 3/3 items (100%)\n",
    ]
