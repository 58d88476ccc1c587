from pathlib import Path

import pytest

from sketchgen.errors import InputError, StyleDefinitionError, UnknownStyleError
from sketchgen.styles import StyleRegistry
from tests.helpers.fakes import drawing_png


def test_unknown_style_lists_the_ids_there_are(style_registry: StyleRegistry) -> None:
    with pytest.raises(UnknownStyleError) as error:
        style_registry.get_style("nope")
    assert error.value.field == "style_id"
    assert "test-ink" in str(error.value)


@pytest.mark.parametrize("style_id", ["../test-ink", "test-ink/..", "%2e%2e", "", "TEST-INK"])
def test_path_like_ids_are_unknown_not_read(style_registry: StyleRegistry, style_id: str) -> None:
    with pytest.raises(UnknownStyleError):
        style_registry.get_style(style_id)


def test_same_image_under_two_names_is_kept_once(tmp_path: Path) -> None:
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.write_bytes(drawing_png(seed=1))
    b.write_bytes(drawing_png(seed=1))
    registry = StyleRegistry(tmp_path / "styles")
    style = registry.add_style("dup", "Dup", references=[a, b])
    assert len(style.references) == 1
    assert len(list((tmp_path / "styles/dup/references").iterdir())) == 1


def test_duplicates_in_a_hand_written_style_json_are_dropped_on_load(tmp_path: Path) -> None:
    folder = tmp_path / "hand"
    (folder / "references").mkdir(parents=True)
    (folder / "references/one.png").write_bytes(drawing_png(seed=3))
    (folder / "references/two.png").write_bytes(drawing_png(seed=3))
    (folder / "style.json").write_text(
        '{"id": "hand", "name": "Hand", "references": ['
        '{"file": "references/one.png"}, {"file": "references/two.png"}]}'
    )
    style = StyleRegistry(tmp_path).get_style("hand")
    assert [Path(r.path).name for r in style.references] == ["one.png"]


def test_reference_outside_the_style_folder_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "secret.png").write_bytes(drawing_png())
    folder = tmp_path / "styles/evil"
    folder.mkdir(parents=True)
    (folder / "style.json").write_text(
        '{"id": "evil", "name": "Evil", "references": [{"file": "../../secret.png"}]}'
    )
    with pytest.raises(StyleDefinitionError):
        StyleRegistry(tmp_path / "styles").get_style("evil")


def test_add_list_and_delete(style_registry: StyleRegistry, tmp_path: Path) -> None:
    ref = tmp_path / "r.png"
    ref.write_bytes(drawing_png(seed=9))
    added = style_registry.add_style("pencil", "Pencil", visual_rules=["Light"], references=[ref])
    assert added.visual_rules == ("Light",)
    assert [s.id for s in style_registry.list_styles()] == ["pencil", "test-ink"]
    with pytest.raises(InputError):
        style_registry.add_style("pencil", "Again")
    style_registry.delete_style("pencil")
    assert style_registry.style_ids() == ["test-ink"]
    with pytest.raises(UnknownStyleError):
        style_registry.delete_style("pencil")


@pytest.mark.parametrize("bad_id", ["Has Space", "../x", "", "x" * 65])
def test_add_style_rejects_bad_ids(style_registry: StyleRegistry, bad_id: str) -> None:
    with pytest.raises(InputError) as error:
        style_registry.add_style(bad_id, "Bad")
    assert error.value.field == "style_id"


def test_packaged_styles_load() -> None:
    registry = StyleRegistry()
    styles = registry.list_styles()
    assert len(styles) >= 2
    for style in styles:
        assert style.references, style.id
        assert style.visual_rules, style.id
        assert len({r.sha256 for r in style.references}) == len(style.references)
