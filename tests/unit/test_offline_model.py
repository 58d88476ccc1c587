import io

import numpy as np
import pytest
from PIL import Image

from sketchgen.generate import OfflineSketchAdapter
from sketchgen.ports import ImageRequest, ReferencePart
from sketchgen.prompt import plan_variations
from sketchgen.schemas import Variation, pixel_size
from sketchgen.styles import StyleRegistry


def _request(
    layout: str = "centered_full_figure", exaggeration: str = "moderate", **kw: object
) -> ImageRequest:
    fields: dict[str, object] = {
        "index": 0,
        "prompt": "",
        "brief": "playful golf mascot",
        "model": "offline",
        "seed": 7,
        "variation": Variation(index=0, layout=layout, exaggeration=exaggeration),  # type: ignore[arg-type]
        **kw,
    }
    return ImageRequest(**fields)  # type: ignore[arg-type]


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("L"))


def test_same_request_same_bytes() -> None:
    model = OfflineSketchAdapter()
    assert model.generate_image(_request()).data == model.generate_image(_request()).data


def test_a_six_sketch_plan_gives_six_different_drawings() -> None:
    model = OfflineSketchAdapter()
    drawings = [
        _pixels(model.generate_image(_request(v.layout, v.exaggeration, index=v.index)).data)
        for v in plan_variations(6, 3)
    ]
    for i in range(6):
        for j in range(i + 1, 6):
            assert np.mean(drawings[i] != drawings[j]) > 0.01, (i, j)


@pytest.mark.parametrize(("size", "ratio"), [("1K", "1:1"), ("2K", "16:9"), ("1K", "9:16")])
def test_drawn_at_the_requested_shape(size: str, ratio: str) -> None:
    data = OfflineSketchAdapter().generate_image(_request(image_size=size, aspect_ratio=ratio)).data
    width, height = pixel_size(size, ratio)
    drawn = Image.open(io.BytesIO(data)).size
    assert abs(drawn[0] / drawn[1] - width / height) < 0.01
    assert max(drawn) == 1024  # drawn at 1K; the finisher scales


def test_white_paper_dark_strokes() -> None:
    pixels = _pixels(OfflineSketchAdapter().generate_image(_request()).data)
    assert 0.01 < np.mean(pixels < 128) < 0.4
    assert np.mean(pixels[:20] == 255) > 0.95  # top margin is paper


def test_silhouette_is_filled_and_extreme_differs_from_subtle() -> None:
    model = OfflineSketchAdapter()
    silhouette = _pixels(model.generate_image(_request("silhouette_thumbnail")).data)
    outline = _pixels(model.generate_image(_request("centered_full_figure")).data)
    assert np.mean(silhouette < 128) > np.mean(outline < 128)
    subtle = _pixels(model.generate_image(_request(exaggeration="subtle")).data)
    extreme = _pixels(model.generate_image(_request(exaggeration="extreme")).data)
    assert np.mean(subtle != extreme) > 0.02


def test_references_set_the_line_weight() -> None:
    registry = StyleRegistry()
    model = OfflineSketchAdapter()

    def ink(style_id: str) -> float:
        refs = tuple(
            ReferencePart(reference=r, data=registry.reference_bytes(r))
            for r in registry.get_style(style_id).references[:3]
        )
        return float(np.mean(_pixels(model.generate_image(_request(references=refs)).data) < 128))

    assert ink("loose-ink-mascot") > ink("pencil-thumbnail") * 1.3


def test_refinement_changes_the_drawing_deterministically() -> None:
    model = OfflineSketchAdapter()
    base = model.generate_image(_request()).data
    refined = model.generate_image(_request(instruction="more exaggerated", input_image=base)).data
    again = model.generate_image(_request(instruction="more exaggerated", input_image=base)).data
    assert refined == again
    assert np.mean(_pixels(base) != _pixels(refined)) > 0.01
