"""ImageNet 1.0: image classification by directory, as CVAT reads and writes it.

With images (``save_images``) the layout is ``<label>/<image>``: an image with several tags is
stored once per label, one without tags under ``no_label/``. Without images a directory cannot
hold the annotations, so (as CVAT does, Datumaro's ``imagenet_txt``) the export is
``<subset>.txt`` with lines ``<image> <label index> ...`` and ``synsets.txt`` listing the labels
in index order; a name containing spaces is written as ``"<id>"<ext>``.

Import reads both layouts: any ``*.txt`` beside ``synsets.txt`` is a subset list (its images are
looked up in ``images/`` and the root); otherwise each image under a first-level directory is
tagged with that directory's name, and images found under several label directories become one
item with several tags. Subsets are not kept by the directory layout.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

from annota.core import hookimpl
from annota.core.errors import FormatError
from annota.core.formats.datasets import StreamedDataset
from annota.core.formats.model import DEFAULT_SUBSET, Dataset, Item, LabelSpec, Tag
from annota.core.formats.output import Output
from annota.core.formats.registry import ExportOptions, Format, ImportOptions
from annota.core.formats.source import image_size, inside

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".jfif"})
NO_LABEL = "no_label"
LABELS_FILE = "synsets.txt"


def export_imagenet(dataset: Dataset, output: Output, options: ExportOptions) -> None:
    names = [label.name for label in dataset.labels]
    if options.save_images:
        _export_directories(dataset, output)
        return
    index = {name: i for i, name in enumerate(names)}
    streams: dict[str, list[str]] = {}
    for item in dataset.items():
        labels = list(dict.fromkeys(tag.label for tag in item.tags))
        for label in labels:
            if label not in index:
                raise FormatError(f"label {label!r} is not among the dataset's labels", item=item.name)
        name = item.name
        if any(char.isspace() for char in name):
            suffix = Path(name).suffix
            name = f'"{item.id}"{suffix}'
        line = " ".join([name, *(str(index[label]) for label in labels)])
        # one small line per item; a ZIP takes one open member at a time, so the lines of all
        # subsets cannot be streamed into their files side by side
        streams.setdefault(item.subset, []).append(line + "\n")
    for subset, lines in streams.items():
        with output.open_text(f"{subset}.txt") as stream:
            stream.writelines(lines)
    with output.open_text(LABELS_FILE) as stream:
        stream.writelines(f"{name}\n" for name in names)


def _export_directories(dataset: Dataset, output: Output) -> None:
    for item in dataset.items():
        data = dataset.image(item)
        if data is None:
            continue
        file_name = item.id + dataset.image_extension(item)
        labels = list(dict.fromkeys(tag.label for tag in item.tags)) or [NO_LABEL]
        for label in labels:
            output.write(f"{label}/{file_name}", data)


def _parse_line(line: str, file: str, lineno: int) -> tuple[str, list[int]]:
    if '"' in line:
        match = re.fullmatch(r'\s*"([^"]*)"(\S*)((?:\s+\S+)*)\s*', line)
        if match is None:
            raise FormatError("unbalanced quotes around the image name", file=file, line=lineno)
        name, values = match.group(1) + match.group(2), match.group(3).split()
    else:
        parts = line.split()
        name, values = parts[0], parts[1:]
    try:
        return name, [int(value) for value in values]
    except ValueError:
        bad = next(value for value in values if not value.lstrip("-").isdigit())
        raise FormatError(f"label index {bad!r} is not an integer", file=file, line=lineno) from None


def _import_lists(root: Path, options: ImportOptions) -> Dataset:
    names = [
        line.strip() for line in (root / LABELS_FILE).read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    lists = sorted(p for p in root.glob("*.txt") if p.name != LABELS_FILE)

    def items() -> Iterator[Item]:
        for list_path in lists:
            file = list_path.name
            with open(list_path, encoding="utf-8") as stream:
                for lineno, line in enumerate(stream, 1):
                    if not line.strip():
                        continue
                    name, indices = _parse_line(line, file, lineno)
                    for value in indices:
                        if not 0 <= value < len(names):
                            raise FormatError(
                                f"label index {value} is not a line of {LABELS_FILE} (0..{len(names) - 1})",
                                file=file,
                                line=lineno,
                            )
                    candidates = (root / "images" / name, root / name)
                    image = next((p for p in candidates if inside(root, p) and p.is_file()), None)
                    width, height = image_size(image, image.name) if image else (None, None)
                    yield Item(
                        name=name,
                        subset=list_path.stem,
                        width=width,
                        height=height,
                        tags=[Tag(label=names[value]) for value in dict.fromkeys(indices)],
                        image=str(image) if image else None,
                    )

    return StreamedDataset(root.name, [LabelSpec(name=n) for n in names], items)


def _import_directories(root: Path, options: ImportOptions) -> Dataset:
    label_dirs = sorted(p for p in root.iterdir() if p.is_dir() and p.name != NO_LABEL)
    names = [p.name for p in label_dirs]

    def items() -> Iterator[Item]:
        found: dict[str, list[str]] = {}
        paths: dict[str, Path] = {}
        for directory in [*label_dirs, root / NO_LABEL]:
            if not directory.is_dir():
                continue
            for path in sorted(directory.rglob("*")):
                if path.suffix.lower() not in IMAGE_EXTENSIONS or not path.is_file():
                    continue
                name = path.relative_to(directory).as_posix()
                labels = found.setdefault(name, [])
                if directory.name != NO_LABEL:
                    labels.append(directory.name)
                paths.setdefault(name, path)
        for path in sorted(root.iterdir()):
            if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
                found.setdefault(path.name, [])
                paths.setdefault(path.name, path)
        for name in sorted(found):
            width, height = image_size(paths[name], paths[name].name)
            yield Item(
                name=name,
                subset=DEFAULT_SUBSET,
                width=width,
                height=height,
                tags=[Tag(label=label) for label in found[name]],
                image=str(paths[name]),
            )

    return StreamedDataset(root.name, [LabelSpec(name=n) for n in names], items)


def import_imagenet(root: Path, options: ImportOptions) -> Dataset:
    if (root / LABELS_FILE).is_file():
        return _import_lists(root, options)
    return _import_directories(root, options)


def detect_imagenet(root: Path) -> float:
    if (root / LABELS_FILE).is_file():
        return 0.9
    directories = [p for p in root.iterdir() if p.is_dir()]
    if not directories or any(
        p.is_file() and p.suffix.lower() not in IMAGE_EXTENSIONS for p in root.iterdir()
    ):
        return 0.0
    for directory in directories:
        entries = list(directory.iterdir())
        if not entries or any(p.is_dir() or p.suffix.lower() not in IMAGE_EXTENSIONS for p in entries):
            return 0.0
    return 0.3


@hookimpl
def register_formats(register: Callable[[Format], None]) -> None:
    register(
        Format(
            "ImageNet",
            "1.0",
            exporter=export_imagenet,
            importer=import_imagenet,
            carries=frozenset({"tag", "images"}),
            detect=detect_imagenet,
            aliases=("imagenet",),
            description="ImageNet: <label>/<image> directories, or synsets.txt and <subset>.txt lists.",
        )
    )


__all__ = ["register_formats"]
