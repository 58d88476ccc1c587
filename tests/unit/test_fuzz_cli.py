"""Property-based fuzzing of the CLI: any arguments end in exit 0, 1 or 2 with at most a
one-line message, never a traceback."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from sketchgen.cli import main

words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)
tricky = words | st.sampled_from(
    ["../..", "-n", "--style", "0", "-1", "9", "1e3", "4K", "7:3", "", " ", "\x00", "..\\..",
     "--offline", "--seed", "2147483648", "--image-size", "--aspect-ratio", "--json"]
)  # fmt: skip


def _run(argv: list[str]) -> tuple[int, str]:
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's --help
            code = int(exit_.code or 0)
    return code, err.getvalue()


@settings(max_examples=120, deadline=None)
@given(args=st.lists(tricky, max_size=6))
def test_generate_arguments(args: list[str]) -> None:
    # A fixed, unwritable output folder keeps fuzzed-but-valid jobs from drawing for real.
    code, err = _run(["generate", *args, "--output-dir", "/proc/sketchgen-no-write"])
    assert code in {0, 1, 2}
    assert "Traceback" not in err
    if code:
        assert len(err.strip().splitlines()) == 1, err


@settings(max_examples=80, deadline=None)
@given(style=tricky)
def test_styles_show(style: str) -> None:
    code, err = _run(["styles", "show", style])
    assert code in {0, 2} and "Traceback" not in err
    if code:
        assert len(err.strip().splitlines()) == 1
        if not style.startswith("-"):  # an option-looking word is argparse's to refuse
            assert "loose-ink-mascot" in err  # an unknown style lists the ones there are


@settings(max_examples=60, deadline=None)
@given(job_dir=tricky, index=tricky, instruction=tricky)
def test_refine_arguments(job_dir: str, index: str, instruction: str) -> None:
    code, err = _run(["refine", job_dir or ".", index, instruction, "--offline"])
    assert code in {1, 2} and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert not Path(job_dir or ".", "refinements").exists()
