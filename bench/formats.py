"""Dataset format plugins against Datumaro, measured in the same run on the same synthetic data.

Two datasets are generated: "boxes" (2,000 images x 50 boxes, 10 labels) and "masks" (500 images x
20 polygons + 5 RLE masks). Images are real 64x48 JPEG files declared as 640x480 to both tools. For
each format (COCO 1.0, PASCAL VOC 1.1, YOLO 1.1, CVAT for images 1.1 / CVAT 1.1):

- export: the annota exporter reading an in-memory ``StreamedDataset`` against Datumaro's
  ``Dataset.export`` of a ``Dataset.from_iterable`` (building the datasets is not timed), images
  included, into a directory;
- import: the annota importer plus one full pass over the items against ``Dataset.import_from`` plus
  one pass, both reading the same files (Datumaro's export from the first step, or annota's with
  ``--import-input annota``);
- convert: COCO -> VOC and COCO -> YOLO as whole processes, ``annota convert`` against
  ``datum convert`` (or, when the ``datum`` command does not run, Datumaro's Python API in a fresh
  interpreter), images included.

Every measurement runs in a fresh process: its peak RSS is that process's own (``os.wait4``), and,
for export and import, includes the dataset it holds in memory. The masks dataset is measured for
the formats that carry polygons and masks (COCO, CVAT). Ratios are Datumaro / annota: above 1 means
annota is faster or smaller.

    python bench/formats.py [--quick] [--formats coco,voc,yolo,cvat] [--steps export,import,convert]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

WIDTH, HEIGHT = 640, 480
LABELS = [f"label_{index}" for index in range(10)]


@dataclass(frozen=True)
class FormatPair:
    """One format as each tool names it."""

    key: str
    annota_export: str
    annota_import: str
    datumaro: str
    #: carries polygons and masks (measured on the masks dataset too)
    segmentation: bool


FORMATS = {
    pair.key: pair
    for pair in (
        FormatPair("coco", "COCO 1.0", "COCO 1.0", "coco_instances", True),
        FormatPair("voc", "PASCAL VOC 1.1", "PASCAL VOC 1.1", "voc", False),
        FormatPair("yolo", "YOLO 1.1", "YOLO 1.1", "yolo", False),
        FormatPair("cvat", "CVAT for images 1.1", "CVAT 1.1", "cvat", True),
    )
}
CONVERT_TARGETS = ("voc", "yolo")


# --- synthetic data (parent process) --------------------------------------------------------


def write_images(directory: Path, count: int) -> list[tuple[str, str]]:
    """``count`` copies of one small real JPEG: (file name, path)."""
    from PIL import Image

    directory.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 140, 200)).save(buffer, "JPEG", quality=80)
    data = buffer.getvalue()
    images = []
    for index in range(count):
        name = f"frame_{index:06d}.jpg"
        (directory / name).write_bytes(data)
        images.append((name, str(directory / name)))
    return images


def boxes_spec(directory: Path, images: int, boxes: int) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(1)
    frames = []
    for name, path in write_images(directory / "images", images):
        xy = rng.uniform(0, [WIDTH - 50, HEIGHT - 50], (boxes, 2)).round(2)
        wh = rng.uniform(5, 45, (boxes, 2)).round(2)
        labels = rng.integers(0, len(LABELS), boxes)
        anns = [
            ("box", int(label), float(x), float(y), float(w), float(h))
            for label, (x, y), (w, h) in zip(labels, xy, wh, strict=True)
        ]
        frames.append((name, path, anns))
    return {"kind": "boxes", "frames": frames}


def masks_spec(directory: Path, images: int, polygons: int, masks: int) -> dict[str, Any]:
    """Polygons are jittered octagons; masks are filled ellipses, given both as CVAT mask points
    (for annota) and as COCO RLE (for Datumaro's ``RleMask``)."""
    import numpy as np
    from pycocotools import mask as mask_utils

    from annota.core.formats.masks import bitmap_to_cvat

    rng = np.random.default_rng(2)
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    angles = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    frames = []
    for name, path in write_images(directory / "images", images):
        anns: list[tuple[Any, ...]] = []
        for _ in range(polygons):
            cx, cy = rng.uniform(50, [WIDTH - 50, HEIGHT - 50])
            radius = rng.uniform(10, 40) * rng.uniform(0.8, 1.2, 8)
            points = np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], 1).round(2)
            anns.append(("polygon", int(rng.integers(0, len(LABELS))), points.ravel().tolist()))
        for _ in range(masks):
            cx, cy = rng.uniform(60, [WIDTH - 60, HEIGHT - 60])
            rx, ry = rng.uniform(10, 50, 2)
            bitmap = ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1
            rle = mask_utils.encode(np.asfortranarray(bitmap.astype(np.uint8)))
            anns.append(("mask", int(rng.integers(0, len(LABELS))), bitmap_to_cvat(bitmap), rle["counts"]))
        frames.append((name, path, anns))
    return {"kind": "masks", "frames": frames}


# --- what the child processes run ------------------------------------------------------------


def annota_registry() -> Any:
    """The formats as ``annota convert`` loads them (format plugins only, no server stack)."""
    from annota.runtime.convert import load_formats

    return load_formats()


def annota_dataset(spec: dict[str, Any]) -> Any:
    from annota.core.formats.datasets import StreamedDataset
    from annota.core.formats.model import Item, LabelSpec, Shape

    items = []
    for frame, (name, path, anns) in enumerate(spec["frames"]):
        shapes = []
        for ann in anns:
            label = LABELS[ann[1]]
            if ann[0] == "box":
                x, y, w, h = ann[2:]
                shapes.append(Shape(type="rectangle", label=label, points=[x, y, x + w, y + h]))
            elif ann[0] == "polygon":
                shapes.append(Shape(type="polygon", label=label, points=ann[2]))
            else:
                shapes.append(Shape(type="mask", label=label, points=ann[2]))
        items.append(Item(name=name, frame=frame, width=WIDTH, height=HEIGHT, shapes=shapes, image=path))
    return StreamedDataset(
        "bench", [LabelSpec(name=label) for label in LABELS], lambda: iter(items), size=len(items)
    )


def datumaro_dataset(spec: dict[str, Any]) -> Any:
    import datumaro as dm

    items = []
    ann_id = 0
    for name, path, anns in spec["frames"]:
        annotations: list[Any] = []
        for ann in anns:
            # Datumaro's COCO exporter needs annotation ids unique across the dataset
            ann_id += 1
            if ann[0] == "box":
                annotations.append(dm.Bbox(*ann[2:], label=ann[1], id=ann_id))
            elif ann[0] == "polygon":
                annotations.append(dm.Polygon(ann[2], label=ann[1], id=ann_id))
            else:
                rle = {"size": [HEIGHT, WIDTH], "counts": ann[3]}
                annotations.append(dm.RleMask(rle=rle, label=ann[1], id=ann_id))
        media = dm.Image.from_file(path, size=(HEIGHT, WIDTH))
        items.append(
            dm.DatasetItem(id=Path(name).stem, subset="default", media=media, annotations=annotations)
        )
    dataset = dm.Dataset.from_iterable(items, categories=LABELS)
    len(dataset)  # builds the dataset's storage now, outside the timing
    return dataset


def child(task: dict[str, Any]) -> dict[str, Any]:
    """One timed operation; the result goes to stdout as JSON."""
    step, tool, fmt = task["step"], task["tool"], FORMATS[task["format"]]
    out = Path(task["out"])
    if step == "export":
        with open(task["spec"], "rb") as stream:
            spec = pickle.load(stream)
        if tool == "annota":
            from annota.core.formats.output import open_output
            from annota.core.formats.registry import ExportOptions

            exporter = annota_registry().get(fmt.annota_export, direction="export").exporter
            dataset = annota_dataset(spec)
            del spec
            start = time.perf_counter()
            with open_output(out) as output:
                exporter(dataset, output, ExportOptions(save_images=True))
        else:
            dataset = datumaro_dataset(spec)
            del spec
            start = time.perf_counter()
            dataset.export(str(out), fmt.datumaro, save_media=True)
        return {"seconds": time.perf_counter() - start}
    # import: read the files, then one full pass over the items and their annotations
    source = Path(task["source"])
    if tool == "annota":
        from annota.core.formats.registry import ImportOptions

        importer = annota_registry().get(fmt.annota_import, direction="import").importer
        start = time.perf_counter()
        imported = importer(source, ImportOptions())
        items = annotations = 0
        for item in imported.items():
            items += 1
            annotations += len(item.shapes) + len(item.tags)
    else:
        import datumaro as dm

        start = time.perf_counter()
        loaded = dm.Dataset.import_from(str(source), fmt.datumaro)
        items = annotations = 0
        for dm_item in loaded:
            items += 1
            annotations += len(dm_item.annotations)
    return {"seconds": time.perf_counter() - start, "items": items, "annotations": annotations}


# --- running processes ----------------------------------------------------------------------


@dataclass
class Measured:
    seconds: float | None = None
    rss_mb: float | None = None
    error: str | None = None
    items: int | None = None
    annotations: int | None = None


def run_process(command: list[str], *, timed_by_child: bool) -> Measured:
    """Run ``command`` to completion: wall time (or the child's own timing) and its peak RSS."""
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr)
        # wait4 reports this child's own resources, not the maximum over every child so far
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        out, err = stdout.read().decode(errors="replace"), stderr.read().decode(errors="replace")
    rss_mb = usage.ru_maxrss / 1024  # kilobytes on Linux
    if process.returncode != 0:
        lines = [line for line in err.strip().splitlines() if line.strip()]
        return Measured(rss_mb=rss_mb, error=lines[-1] if lines else f"exit code {process.returncode}")
    if not timed_by_child:
        return Measured(seconds=wall, rss_mb=rss_mb)
    result = json.loads(out.strip().splitlines()[-1])
    return Measured(result["seconds"], rss_mb, None, result.get("items"), result.get("annotations"))


def run_child(task: dict[str, Any]) -> Measured:
    return run_process([sys.executable, __file__, "--child", json.dumps(task)], timed_by_child=True)


def best_of(repeat: int, run: Callable[[], Measured], out: Path | None = None) -> Measured:
    results = []
    for _ in range(repeat):
        if out is not None and out.exists():
            shutil.rmtree(out)
        results.append(run())
    good = [result for result in results if result.error is None]
    if not good:
        return results[-1]
    best = min(good, key=lambda result: result.seconds or 0.0)
    best.rss_mb = min(result.rss_mb or 0.0 for result in good)
    return best


def datum_cli() -> str | None:
    """The ``datum`` command next to this interpreter, if it runs (it needs optional extras)."""
    datum = Path(sys.executable).with_name("datum")
    if not datum.exists():
        return None
    probe = subprocess.run([str(datum), "--version"], capture_output=True, timeout=120)
    return str(datum) if probe.returncode == 0 else None


def annota_cli() -> list[str]:
    annota = Path(sys.executable).with_name("annota")
    return [str(annota)] if annota.exists() else [sys.executable, "-m", "annota.runtime.cli"]


DATUMARO_CONVERT = (
    "import sys, datumaro as dm; "
    "dm.Dataset.import_from(sys.argv[1], sys.argv[2]).export(sys.argv[3], sys.argv[4], save_media=True)"
)


def convert_commands(
    source: Path, target: FormatPair, out: Path, datum: str | None
) -> tuple[list[str], list[str]]:
    coco = FORMATS["coco"]
    annota = [
        *annota_cli(), "convert", "-if", coco.annota_import, "-i", str(source), "-f", target.annota_export,
        "-o", str(out / "annota"), "--save-images", "-q",
    ]  # fmt: skip
    if datum:
        datumaro = [
            datum, "convert", "-if", coco.datumaro, "-i", str(source), "-f", target.datumaro,
            "-o", str(out / "datumaro"), "--", "--save-media",
        ]  # fmt: skip
    else:
        datumaro = [
            sys.executable, "-c", DATUMARO_CONVERT, str(source), coco.datumaro, str(out / "datumaro"),
            target.datumaro,
        ]  # fmt: skip
    return annota, datumaro


# --- the benchmark ---------------------------------------------------------------------------


@dataclass
class Row:
    dataset: str
    format: str
    step: str
    annota: Measured
    datumaro: Measured


def count_files(root: Path, suffix: str) -> int:
    return sum(1 for path in root.rglob(f"*{suffix}") if path.is_file())


class Bench:
    """The measurements of one run, in the order they are printed."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.formats = [FORMATS[key] for key in args.formats]
        self.specs: dict[str, Path] = {}
        self.rows: list[Row] = []
        self.notes: list[str] = []

    def run(self) -> None:
        sizes: dict[str, tuple[int, ...]] = (
            {"boxes": (100, 50), "masks": (30, 20, 5)}
            if self.args.quick
            else {"boxes": (2000, 50), "masks": (500, 20, 5)}
        )
        datasets = ["boxes"] + (["masks"] if any(fmt.segmentation for fmt in self.formats) else [])
        for name in datasets:
            self.generate(name, sizes[name])
        for dataset in datasets:
            for fmt in self.formats:
                if dataset == "boxes" or fmt.segmentation:
                    self.bench_format(dataset, fmt)
        if "convert" in self.args.steps:
            self.bench_convert()

    def generate(self, name: str, size: tuple[int, ...]) -> None:
        started = time.perf_counter()
        directory = self.workdir / name
        spec = boxes_spec(directory, *size) if name == "boxes" else masks_spec(directory, *size)
        self.specs[name] = self.workdir / f"{name}.pickle"
        with open(self.specs[name], "wb") as stream:
            pickle.dump(spec, stream, protocol=pickle.HIGHEST_PROTOCOL)
        shapes = sum(len(anns) for _, _, anns in spec["frames"])
        elapsed = time.perf_counter() - started
        self.notes.append(
            f"{name}: {len(spec['frames'])} images, {shapes} annotations (made in {elapsed:.1f} s)"
        )

    def export_dir(self, tool: str, dataset: str, fmt: FormatPair) -> Path:
        return self.workdir / "exports" / tool / dataset / fmt.key

    def export(self, tool: str, dataset: str, fmt: FormatPair) -> Measured:
        out = self.export_dir(tool, dataset, fmt)
        task = {
            "step": "export",
            "tool": tool,
            "format": fmt.key,
            "spec": str(self.specs[dataset]),
            "out": str(out),
        }
        return best_of(self.args.repeat, partial(run_child, task), out)

    def bench_format(self, dataset: str, fmt: FormatPair) -> None:
        steps, source_tool = self.args.steps, self.args.import_input
        # the import step reads one tool's export: without the export step only that one is made
        tools = ("annota", "datumaro") if "export" in steps else (source_tool,)
        exported = {tool: self.export(tool, dataset, fmt) for tool in tools}
        if "export" in steps:
            self.rows.append(Row(dataset, fmt.key, "export", exported["annota"], exported["datumaro"]))
            images = {tool: count_files(self.export_dir(tool, dataset, fmt), ".jpg") for tool in exported}
            if len(set(images.values())) > 1:
                self.notes.append(f"{dataset}/{fmt.key} export: images written {images}")
        if "import" not in steps:
            return
        source = self.export_dir(source_tool, dataset, fmt)
        measured = {}
        for tool in ("annota", "datumaro"):
            task = {"step": "import", "tool": tool, "format": fmt.key, "source": str(source), "out": ""}
            measured[tool] = best_of(self.args.repeat, partial(run_child, task))
        self.rows.append(Row(dataset, fmt.key, "import", measured["annota"], measured["datumaro"]))
        counts = {tool: (m.items, m.annotations) for tool, m in measured.items() if m.error is None}
        if len(set(counts.values())) > 1:
            self.notes.append(
                f"{dataset}/{fmt.key} import of {source_tool}'s export: (items, annotations) {counts}"
            )

    def bench_convert(self) -> None:
        datum = datum_cli()
        how = "the datum command" if datum else "its Python API in a fresh interpreter (`datum` does not run)"
        self.notes.append(f"convert: Datumaro through {how}")
        coco = FORMATS["coco"]
        source = self.export_dir(self.args.import_input, "boxes", coco)
        if not source.exists():
            self.export(self.args.import_input, "boxes", coco)
        for key in CONVERT_TARGETS:
            if key not in self.args.formats:
                continue
            out = self.workdir / "converted" / key
            commands = dict(
                zip(("annota", "datumaro"), convert_commands(source, FORMATS[key], out, datum), strict=True)
            )
            measured = {
                tool: best_of(
                    self.args.repeat,
                    partial(run_process, command, timed_by_child=False),
                    out / tool,
                )
                for tool, command in commands.items()
            }
            self.rows.append(
                Row("boxes", f"coco->{key}", "convert", measured["annota"], measured["datumaro"])
            )
            images = {tool: count_files(out / tool, ".jpg") for tool in measured if (out / tool).exists()}
            if len(set(images.values())) > 1:
                self.notes.append(f"coco->{key} convert: images written {images}")


def ratio(datumaro: float | None, annota: float | None) -> str:
    return f"{datumaro / annota:.2f}x" if datumaro and annota else "-"


def cell(value: float | None, error: str | None, digits: int) -> str:
    return "error" if error else (f"{value:.{digits}f}" if value is not None else "-")


def print_table(rows: list[Row], notes: list[str], args: argparse.Namespace) -> None:
    out = sys.stdout
    mode = "quick" if args.quick else "full"
    out.write(
        f"Format plugins vs Datumaro ({mode} sizes, best of {args.repeat}; ratio = Datumaro / annota)\n\n"
    )
    out.write(
        "| dataset | format | step | annota s | datumaro s | time ratio | annota MB | datumaro MB "
        "| RSS ratio |\n|---|---|---|---:|---:|---:|---:|---:|---:|\n"
    )
    errors = []
    for row in rows:
        a, d = row.annota, row.datumaro
        out.write(
            f"| {row.dataset} | {row.format} | {row.step} | {cell(a.seconds, a.error, 2)} | "
            f"{cell(d.seconds, d.error, 2)} | {ratio(d.seconds, a.seconds)} | {cell(a.rss_mb, None, 0)} | "
            f"{cell(d.rss_mb, None, 0)} | {ratio(d.rss_mb, a.rss_mb)} |\n"
        )
        for tool, measured in (("annota", a), ("datumaro", d)):
            if measured.error:
                errors.append(f"{row.dataset}/{row.format} {row.step}, {tool}: {measured.error}")
    out.write("\n")
    for line in [*notes, *errors]:
        out.write(f"- {line}\n")


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child(json.loads(sys.argv[2]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Small datasets, for a smoke run.")
    parser.add_argument(
        "--formats",
        type=lambda text: [key.strip() for key in text.split(",") if key.strip()],
        default=list(FORMATS),
        help=f"Comma-separated subset of {','.join(FORMATS)}.",
    )
    parser.add_argument(
        "--steps",
        type=lambda text: [key.strip() for key in text.split(",") if key.strip()],
        default=["export", "import", "convert"],
        help="Comma-separated subset of export,import,convert.",
    )
    parser.add_argument(
        "--import-input",
        choices=["datumaro", "annota"],
        default="datumaro",
        help="Whose export both tools import (and convert from).",
    )
    parser.add_argument("--repeat", type=int, default=1, help="Runs per measurement (best is kept).")
    parser.add_argument("--keep", type=Path, help="Keep the generated data and outputs in this directory.")
    args = parser.parse_args()
    unknown = [key for key in args.formats if key not in FORMATS]
    if unknown:
        parser.error(f"unknown formats {unknown}; choose from {','.join(FORMATS)}")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        run = Bench(args, args.keep)
        run.run()
    else:
        with tempfile.TemporaryDirectory(prefix="annota-bench-formats-") as directory:
            run = Bench(args, Path(directory))
            run.run()
    print_table(run.rows, run.notes, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
