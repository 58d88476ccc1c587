import pytest

from sketchgen.errors import ConfigError
from sketchgen.prompt import plan_variations
from sketchgen.prompt.variation import MAX_VARIATIONS
from sketchgen.schemas import LAYOUTS


@pytest.mark.parametrize("seed", range(25))
@pytest.mark.parametrize("n", [1, 3, 4, 6, 8, MAX_VARIATIONS])
def test_pairs_never_repeat_within_a_job(seed: int, n: int) -> None:
    plan = plan_variations(n, seed)
    pairs = {(v.layout, v.exaggeration) for v in plan}
    assert len(pairs) == n
    assert [v.index for v in plan] == list(range(n))


@pytest.mark.parametrize("seed", range(10))
def test_first_six_sketches_use_six_layouts(seed: int) -> None:
    assert {v.layout for v in plan_variations(6, seed)} == set(LAYOUTS)


def test_plan_is_deterministic_from_the_seed() -> None:
    assert plan_variations(6, 42) == plan_variations(6, 42)
    plans = {plan_variations(6, seed) for seed in range(20)}
    assert len(plans) > 5


@pytest.mark.parametrize("n", [0, -1, MAX_VARIATIONS + 1])
def test_out_of_range_counts_are_config_errors(n: int) -> None:
    with pytest.raises(ConfigError) as error:
        plan_variations(n, 0)
    assert error.value.field == "num_images"
