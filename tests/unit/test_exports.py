"""Draw-over exports (issue 27): each format read back by an independent reader and compared
with the sketch it came from."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sketchgen.cli import main
from sketchgen.errors import InputError
from sketchgen.exports import EXPORT_FORMATS, checked_format, export_name, export_sketch
from sketchgen.finish import guard_sketch
from sketchgen.schemas import Style
from tests.helpers.images import offspec_drawing
from tests.helpers.ink import ink_of_png, ink_of_svg, tolerant_iou


@pytest.fixture(scope="module")
def sketch() -> bytes:
    """A finished sketch, as the pipeline makes one (the finisher over a model's drawing)."""
    png, _ = guard_sketch(offspec_drawing(1024, 768, seed=3), "1K", "4:3")
    return png


def _gray(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("L"))


def test_svg_is_paths_that_rasterise_back_onto_the_pngs_ink(sketch: bytes) -> None:
    svg = export_sketch(sketch, "svg")
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    height, width = _gray(sketch).shape
    assert (root.get("width"), root.get("height")) == (str(width), str(height))
    paths = root.findall(f".//{ns}path")
    assert paths and all(p.get("d") for p in paths)
    assert not root.findall(f".//{ns}image")  # vectors, not an embedded bitmap
    iou = tolerant_iou(ink_of_svg(svg), ink_of_png(sketch), tolerance_px=3)
    assert iou >= 0.8, iou


def test_svg_of_a_blank_page_has_no_ink() -> None:
    blank = io.BytesIO()
    Image.new("L", (64, 48), 255).save(blank, "PNG")
    svg = export_sketch(blank.getvalue(), "svg")
    assert not ink_of_svg(svg).any()


def test_transparent_png_has_clear_corners_and_opaque_ink(sketch: bytes) -> None:
    out = Image.open(io.BytesIO(export_sketch(sketch, "png")))
    assert out.format == "PNG" and out.mode == "LA"
    gray = _gray(sketch)
    assert out.size == (gray.shape[1], gray.shape[0])
    alpha = np.asarray(out.getchannel("A"))
    for y, x in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
        assert alpha[y, x] == 0
    darkest = gray <= 20
    assert darkest.any() and (alpha[darkest] >= 235).all()
    # Over white it is the sketch again, pixel for pixel.
    white = Image.new("RGBA", out.size, (255, 255, 255, 255))
    flat = np.asarray(Image.alpha_composite(white, out.convert("RGBA")).convert("L")).astype(int)
    assert np.abs(flat - gray.astype(int)).max() <= 1


def test_psd_reads_back_as_layers_at_the_sketchs_size(sketch: bytes) -> None:
    from psd_tools import PSDImage

    document = PSDImage.open(io.BytesIO(export_sketch(sketch, "psd")))
    height, width = _gray(sketch).shape
    assert document.size == (width, height)
    layers = list(document)
    assert [layer.name for layer in layers] == ["Background", "Sketch", "Drawing"]
    assert all(layer.size == (width, height) for layer in layers[:2])
    sketch_layer = np.asarray(layers[1].topil().convert("RGBA"))
    assert sketch_layer[0, 0, 3] == 0  # transparent where the sketch is white
    drawing = np.asarray(layers[2].topil().convert("RGBA"))
    assert (drawing[..., 3] == 0).all()  # the layer to draw on is empty
    composite = np.asarray(document.topil().convert("L")).astype(int)
    assert np.abs(composite - _gray(sketch).astype(int)).max() <= 1


def test_ora_is_openraster_with_mimetype_first_and_the_layers_in_stack_xml(
    sketch: bytes,
) -> None:
    data = export_sketch(sketch, "ora")
    # Readers sniff the file: "mimetype" must be the first entry, stored, at byte 30 + 8.
    assert data[30:38] == b"mimetype" and data[38:54] == b"image/openraster"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        first = archive.infolist()[0]
        assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
        stack = ET.fromstring(archive.read("stack.xml"))
        height, width = _gray(sketch).shape
        assert (stack.get("w"), stack.get("h")) == (str(width), str(height))
        layers = stack.findall("./stack/layer")
        assert [layer.get("name") for layer in layers] == ["Drawing", "Sketch", "Background"]
        for layer in layers:
            with Image.open(io.BytesIO(archive.read(layer.get("src", "")))) as image:
                assert image.size == (width, height)
        merged = _gray(archive.read("mergedimage.png"))
        assert (merged == _gray(sketch)).all()
        with Image.open(io.BytesIO(archive.read("Thumbnails/thumbnail.png"))) as thumb:
            assert max(thumb.size) <= 256


def test_an_unknown_format_or_a_broken_png_names_the_field() -> None:
    with pytest.raises(InputError) as unknown:
        checked_format("gif")
    assert unknown.value.field == "format"
    with pytest.raises(InputError) as broken:
        export_sketch(b"not a png", "svg")
    assert broken.value.field == "image"


def test_export_names_never_overwrite_the_sketch() -> None:
    names = {export_name(2, fmt) for fmt in EXPORT_FORMATS}
    assert "sketch_2.png" not in names and len(names) == len(EXPORT_FORMATS)


def _job_folder(tmp_path: Path, sketch: bytes) -> Path:
    folder = tmp_path / "20260101_000000-abcdef"
    folder.mkdir()
    (folder / "sketch_0.png").write_bytes(sketch)
    (folder / "metadata.json").write_text(
        json.dumps(
            {
                "sketches": [
                    {"index": 0, "status": "ok", "file": "sketch_0.png"},
                    {"index": 1, "status": "failed", "file": None},
                ]
            }
        )
    )
    return folder


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_cli_export_writes_each_made_sketch_beside_it(
    fmt: str, tmp_path: Path, sketch: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _job_folder(tmp_path, sketch)
    assert main(["export", str(folder), "--format", fmt]) == 0
    written = folder / export_name(0, checked_format(fmt))
    assert capsys.readouterr().out.split() == [str(written)]
    assert written.read_bytes() == export_sketch(sketch, checked_format(fmt))
    assert not (folder / export_name(1, checked_format(fmt))).exists()  # the failed one


@pytest.mark.parametrize(
    "argv",
    [
        ["--format", "gif"],
        ["--format", "svg", "--index", "7"],
        ["--format", "svg", "--index", "x"],
        [],
    ],
)
def test_cli_export_bad_input_is_exit_2_with_one_line(
    argv: list[str], tmp_path: Path, sketch: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _job_folder(tmp_path, sketch)
    assert main(["export", str(folder), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sketchgen: error:")


def test_cli_export_of_a_folder_that_is_no_job_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(tmp_path), "--format", "svg"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "job_folder" in err


def test_generation_result_exports_a_sketch_beside_it(style: Style, tmp_path: Path) -> None:
    from sketchgen.generate import GenerationConfig, ImageGenerator, OfflineSketchAdapter
    from sketchgen.prompt import PromptCompiler
    from sketchgen.references import ImageRetriever

    spec = PromptCompiler().compile("playful golf mascot", style)
    result = ImageGenerator(OfflineSketchAdapter()).generate(
        prompt_spec=spec,
        retrieval_result=ImageRetriever().retrieve(spec, style, top_k=3),
        style=style,
        config=GenerationConfig(output_dir=tmp_path, num_images=1, seed=5),
    )
    path = result.export(0, "svg")
    assert path == result.output_dir / "sketch_0.svg"
    assert (
        tolerant_iou(ink_of_svg(path.read_bytes()), ink_of_png(result.images[0].read_bytes()), 3)
        >= 0.8
    )
    with pytest.raises(InputError) as bad:
        result.export(0, "tiff")
    assert bad.value.field == "format"


def test_cli_export_json_names_each_file(
    tmp_path: Path, sketch: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _job_folder(tmp_path, sketch)
    assert main(["export", str(folder), "--format", "ora", "--index", "0", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == [{"event": "exported", "format": "ora", "path": str(folder / "sketch_0.ora")}]
