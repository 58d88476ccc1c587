import pytest

from sketchgen.errors import InputError
from sketchgen.prompt import PromptCompiler, plan_variations
from sketchgen.schemas import Style


def test_prompt_carries_style_rules_sketch_rules_and_variation(style: Style) -> None:
    spec = PromptCompiler().compile("playful golf mascot", style)
    assert spec.style_id == "test-ink"
    assert spec.keywords == ("playful", "golf", "mascot")
    for variation in plan_variations(6, 3):
        prompt = spec.prompt_for(variation)
        assert "playful golf mascot" in prompt
        assert "Thick outlines" in prompt  # the style's visual rule
        assert "white background" in prompt and "grayscale" in prompt
        assert "no colour" in prompt and "no gradients" in prompt and "no photorealism" in prompt
        assert "no text" in prompt
        layout_words = {
            "centered_full_figure": "centred",
            "three_quarter_view": "three-quarter",
            "close_up": "close-up",
            "dynamic_diagonal_action": "diagonal",
            "off_center_negative_space": "off-centre",
            "silhouette_thumbnail": "silhouette",
        }
        assert layout_words[variation.layout] in prompt
        assert variation.exaggeration in prompt.lower()


def test_text_only_when_allowed(style: Style) -> None:
    spec = PromptCompiler().compile("golf club logo with the word GOLF", style)
    variation = plan_variations(1, 0)[0]
    assert "no text" not in spec.prompt_for(variation, allow_text=True)
    assert "lettering is allowed" in spec.prompt_for(variation, allow_text=True)


def test_brief_is_cleaned_of_control_characters(style: Style) -> None:
    spec = PromptCompiler().compile("  golf\x00 mascot\n\tplease\u200b ", style)
    assert spec.brief == "golf mascot please"


@pytest.mark.parametrize("brief", ["", "   ", "\x00\x01", "x" * 2001, None, 42])
def test_bad_briefs_name_the_field(style: Style, brief: object) -> None:
    with pytest.raises(InputError) as error:
        PromptCompiler().compile(brief, style)
    assert error.value.field == "brief"
