"""The web page in headless Chromium (Debian's package, driven by Playwright), against
`sketchgen serve` and against `make dev` under the deployed URL layout (a function prefix),
with the model served by the local Gemini-protocol server.

A screenshot of the finished grid is kept in ``test-artifacts/web/``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, sync_playwright

from dev.processes import ManagedProcess, free_port, wait_for_http
from dev.router import Router, serve_router
from dev.topology import DevTopology
from sketchgen.bootstrap import LOCAL_OWNER
from sketchgen.testing.gemini_server import FakeGeminiServer
from tests.helpers.auth import sign_up
from tests.helpers.waiting import wait_until

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
CHROMIUM = os.environ.get("SKETCHGEN_CHROMIUM", "/usr/bin/chromium")
# Without these, Chromium keeps dialling Google's hosts, which this network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def gemini() -> Iterator[FakeGeminiServer]:
    with FakeGeminiServer(latency_s=0.4, slow_s=2.5) as server:
        yield server


@dataclass(frozen=True)
class Site:
    """Where the page is, and the account to sign in with (None: `sketchgen serve`'s dev auth)."""

    url: str
    headers: dict[str, str]
    email: str | None = None
    password: str | None = None
    auth_host: str | None = None


def _serve(gemini: FakeGeminiServer, data: Path) -> Iterator[Site]:
    """`sketchgen serve`: the page and API at the host's root."""
    port = free_port()
    process = ManagedProcess(
        "serve",
        [sys.executable, "-m", "sketchgen.cli", "serve", "--port", str(port), "--data-dir",
         str(data)],
        log_dir=data,
        env={"GEMINI_API_KEY": "web-test-key", "GOOGLE_GEMINI_BASE_URL": gemini.url,
             "SKETCHGEN_AUTH": "dev"},
    ).start()  # fmt: skip
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout_s=60, process=process)
        yield Site(f"http://127.0.0.1:{port}/", {"Authorization": f"Bearer dev:{LOCAL_OWNER}"})
    finally:
        process.stop()


def _deployed(gemini: FakeGeminiServer, data: Path) -> Iterator[Site]:
    """`make dev` (each function with its cloud environment, sign-in through the Firebase Auth
    emulator only) behind the deployed URL layout: https://REGION-PROJECT.cloudfunctions.net/
    <function>/..., the prefix stripped before the function sees the path, the page at the
    generate function's URL."""
    port = free_port()
    front = f"http://127.0.0.1:{port}"
    values = {"GEMINI_API_KEY": "web-test-key", "GOOGLE_GEMINI_BASE_URL": gemini.url,
              "SKETCHGEN_EVENTS_BASE_URL": f"{front}/sketchgen-stream"}  # fmt: skip
    with DevTopology(port=free_port(), data_dir=data, values=values) as topology:
        functions = {
            f"sketchgen-{name}": f"127.0.0.1:{topology.ports[name]}"
            for name in ("generate", "stream")
        }
        server, _ = serve_router(Router(prefixes=functions), "127.0.0.1", port)
        auth_host = f"127.0.0.1:{topology.ports['auth']}"
        email, password = "designer@example.com", "a-long-test-password"
        _, token = sign_up(auth_host, email, password)
        try:
            yield Site(
                f"{front}/sketchgen-generate/",
                {"Authorization": f"Bearer {token}"},
                email=email,
                password=password,
                auth_host=auth_host,
            )
        finally:
            server.shutdown()
            server.server_close()


@pytest.fixture(scope="module", params=["serve", "deployed"])
def server(
    request: pytest.FixtureRequest,
    gemini: FakeGeminiServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Site]:
    data = tmp_path_factory.mktemp(request.param)
    yield from (_serve if request.param == "serve" else _deployed)(gemini, data)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `make browser` installs Debian's package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _sign_in(page: Page, email: str, password: str, *, new: bool = False) -> None:
    page.wait_for_selector("body[data-ready=signed-out]")
    assert page.locator("#app").is_hidden() and page.locator("#sign-in").is_visible()
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#sign-up" if new else "#sign-in-submit")


@pytest.fixture
def page(browser: Browser, server: Site, gemini: FakeGeminiServer) -> Iterator[Page]:
    gemini.reset()
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server.url)
    if server.email and server.password:
        _sign_in(page, server.email, server.password)
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_selector(".style-card")
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def _generate(page: Page, brief: str, sketches: int) -> None:
    page.fill("#brief", brief)
    page.select_option("#num_images", str(sketches))
    page.click("#generate")
    page.wait_for_selector(f".sketch[data-index='{sketches - 1}']")


def _wait_for_hash(page: Page, check: Callable[[str], bool], timeout_s: float = 15.0) -> None:
    """Polled from here: the page's CSP (no eval) refuses Playwright's wait_for_function."""
    wait_until(
        lambda: check(page.evaluate("location.hash")),
        "location.hash never matched",
        timeout_s=timeout_s,
    )


def _settled(page: Page) -> int:
    """Cards showing their outcome (an image, a failure or a cancellation)."""
    return page.locator(".sketch:not([data-status=pending])").count()


def test_grid_fills_progressively_shows_failures_and_downloads(
    page: Page, gemini: FakeGeminiServer, tmp_path: Path
) -> None:
    # In arrival order: two quick images, a safety block, and one slow image.
    gemini.script(["image", "image", "IMAGE_SAFETY", "slow"])
    _generate(page, "playful golf mascot", 4)

    seen = []

    def settled() -> bool:
        count = _settled(page)
        seen.append(count)
        if count == 3 and not (ARTIFACTS / "grid-in-progress.png").exists():
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=ARTIFACTS / "grid-in-progress.png", full_page=True)
        return count >= 4

    wait_until(settled, "the grid never settled all four sketches", timeout_s=30)
    assert _settled(page) == 4
    assert 3 in seen, f"the grid never showed three of four sketches done: {sorted(set(seen))}"
    assert page.locator(".sketch[data-status=pending]").count() == 0
    page.wait_for_selector("#job-status[data-status=partial]")

    failed = page.locator(".sketch[data-status=failed]")
    assert failed.count() == 1
    assert "safety filter" in failed.inner_text() and "IMAGE_SAFETY" in failed.inner_text()

    images = page.locator(".sketch[data-status=ok] img")
    assert images.count() == 3
    for i in range(3):  # every image decoded in the browser at the requested 1K size
        assert images.nth(i).evaluate("img => img.complete && img.naturalWidth") == 1024

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "finished-grid.png", full_page=True)

    with page.expect_download() as download_info:
        page.locator(".sketch[data-status=ok] a[download]").first.click()
    png = Image.open(download_info.value.path())
    assert (png.format, png.mode, png.size) == ("PNG", "L", (1024, 1024))

    with page.expect_download() as download_info:
        page.click("#download-zip")
    archive = zipfile.ZipFile(download_info.value.path())
    names = sorted(Path(n).name for n in archive.namelist())
    metadata = json.loads(next(archive.read(n) for n in archive.namelist() if n.endswith(".json")))
    assert metadata["prompt_spec"]["brief"] == "playful golf mascot"
    ok = sorted(f"sketch_{s['index']}.png" for s in metadata["sketches"] if s["status"] == "ok")
    assert len(ok) == 3 and names == sorted(["metadata.json", *ok])


def test_refine_opens_the_child_job_with_its_lineage(
    page: Page, gemini: FakeGeminiServer, server: Site
) -> None:
    _generate(page, "grumpy coffee cup", 3)
    page.wait_for_selector("#job-status[data-status=done]")
    parent_id = page.evaluate("location.hash").removeprefix("#job=")

    page.locator(".sketch[data-index='1'] button", has_text="Refine").click()
    page.fill("#instruction", "more exaggerated")
    page.click("#refine-submit")
    _wait_for_hash(page, lambda h: h != f"#job={parent_id}")
    child_id = page.evaluate("location.hash").removeprefix("#job=")
    page.wait_for_selector("#job-status[data-status=done]")

    lineage = page.inner_text("#job-lineage")
    assert f"job {parent_id} sketch #2" in lineage and "more exaggerated" in lineage
    assert page.locator(".sketch[data-status=ok] img").count() == 1
    # The model got the chosen sketch as its input image, with the instruction.
    refine_call = gemini.requests[-1]
    assert "more exaggerated" in refine_call.prompt and refine_call.image_parts >= 1

    request = urllib.request.Request(f"{server.url}v1/jobs/{child_id}", headers=server.headers)
    with urllib.request.urlopen(request) as response:
        child = json.loads(response.read())
    assert child["parent"]["job_id"] == parent_id and child["parent"]["index"] == 1

    page.locator("#job-lineage a").first.click()  # back to the parent through the lineage
    _wait_for_hash(page, lambda h: h == f"#job={parent_id}")
    page.wait_for_selector(".sketch[data-index='2'][data-status=ok]")


def test_the_page_shows_what_is_left_today_and_greys_out_the_plan(page: Page) -> None:
    page.wait_for_selector("#usage[data-left]")
    left = int(page.get_attribute("#usage", "data-left") or "0")
    assert "images left today" in page.inner_text("#usage") and "plan free" in page.inner_text(
        "#usage"
    )
    # The free plan (docs/decisions/0012): the flash model at 1K and 2K.
    assert page.locator("#image_size option", has_text="4K").is_disabled()
    assert page.locator("#image_size option", has_text="2K").is_enabled()
    assert page.locator("#model option[value='pro']").is_disabled()
    assert page.locator("#model option[value='flash']").is_enabled()
    _generate(page, "tiny robot mascot", 3)
    page.wait_for_selector("#job-status[data-status=done]")
    page.wait_for_selector(f"#usage[data-left='{left - 3}']")


def test_bad_input_is_explained_on_the_page(page: Page, gemini: FakeGeminiServer) -> None:
    page.click("#generate")  # empty brief: the page says so and sends nothing
    assert "brief" in page.inner_text("#form-error").lower()
    assert gemini.calls() == 0
    page.fill("#brief", "x" * 2001)  # past the API's limit: the server's 422 names the field
    page.evaluate("document.querySelector('#brief').removeAttribute('maxlength')")
    page.fill("#brief", "x" * 2001)
    page.click("#generate")
    page.wait_for_selector("#form-error:not([hidden])")
    assert "2000" in page.inner_text("#form-error")
    assert page.locator("#job").is_hidden()


def test_a_new_user_signs_up_through_the_page_and_runs_a_job(
    browser: Browser, server: Site, gemini: FakeGeminiServer
) -> None:
    gemini.reset()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server.url)
    if server.auth_host is None:  # `sketchgen serve`: local dev auth, no sign-in view at all
        page.wait_for_selector("body[data-ready=true]")
        assert page.locator("#sign-in").is_hidden() and "local" in page.inner_text("#account")
        context.close()
        return
    _sign_in(page, "wrong-password@example.com", "nope", new=False)  # no such account
    page.wait_for_selector("#sign-in-error:not([hidden])")
    email = f"new-{time.monotonic_ns()}@example.com"
    page.fill("#email", email)
    page.fill("#password", "a-long-test-password")
    page.click("#sign-up")
    page.wait_for_selector("body[data-ready=true]")
    assert email in page.inner_text("#account")
    page.wait_for_selector(".style-card")
    _generate(page, "heroic space fox", 3)
    page.wait_for_selector("#job-status[data-status=done]")
    assert page.locator(".sketch[data-status=ok] img").count() == 3
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "signed-up-job.png", full_page=True)
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def test_page_assets_are_served_without_auth(server: Site) -> None:
    assets = {"": "text/html", "assets/app.js": "text/javascript",
              "assets/app.css": "text/css", "config.json": "application/json"}  # fmt: skip
    for path, kind in assets.items():
        with urllib.request.urlopen(f"{server.url}{path}") as response:
            assert response.headers.get_all("Content-Type") == [response.headers["Content-Type"]]
            assert response.headers["Content-Type"].startswith(kind)
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.read()
    with urllib.request.urlopen(server.url) as response:
        policy = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy


def test_a_style_of_ones_own_with_references_is_picked_for_a_job(
    page: Page, gemini: FakeGeminiServer, tmp_path: Path
) -> None:
    """Create a style, drop references in (one of them SVG named .png), see their thumbnails,
    and draw a job in it: the model gets the style's references (issue 16)."""
    name = f"Team ink {time.monotonic_ns() % 100000}"
    page.fill("#style-name", name)
    page.fill("#style-rules", "thick confident ink lines\nno shading")
    page.click("#create-style")
    page.wait_for_selector("#own-style:not([hidden])")
    assert page.inner_text("#own-style-name") == name
    assert page.locator(".style-card[data-owned=true] input:checked").count() == 1

    files = []
    for i, colour in enumerate(("black", "gray")):
        path = tmp_path / f"golf-{i}.png"
        image = Image.new("RGB", (300, 200), "white")
        image.paste(colour, (20 + 40 * i, 20, 120 + 40 * i, 150))
        image.save(path)
        files.append(path)
    fake = tmp_path / "fake.png"
    fake.write_text("<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>")
    page.fill("#reference-tags", "golf, mascot")
    page.set_input_files("#reference-files", [*files, fake])
    page.wait_for_selector("#style-error:not([hidden])")
    assert "fake.png" in page.inner_text("#style-error")
    assert "not a PNG, JPEG or WebP" in page.inner_text("#style-error")
    assert page.locator(".own-reference").count() == 2
    thumbs = page.locator(".own-reference img")
    wait_until(
        lambda: all(
            thumbs.nth(i).evaluate("img => img.complete && img.naturalWidth") for i in range(2)
        ),
        "thumbnails never loaded",
        timeout_s=10,
    )
    assert "golf, mascot" in page.inner_text("#own-references")

    # A third reference, banned, then one removed: the job must not get the banned one.
    extra = tmp_path / "banned.png"
    Image.new("RGB", (200, 200), "white").save(extra)
    page.fill("#reference-tags", "golf, mascot, banned")
    page.set_input_files("#reference-files", [extra])
    page.wait_for_selector(".own-reference >> nth=2")
    banned = page.locator(".own-reference", has_text="banned")
    banned.locator("button.ban").click()
    page.wait_for_selector(".own-reference[data-do-not-use=true]")
    assert page.locator(".own-reference[data-do-not-use=true]").count() == 1

    _generate(page, "playful golf mascot", 3)
    page.wait_for_selector("#job-status[data-status=done]")
    # Two usable references (the banned one is never sent) reach every model call.
    assert gemini.requests and all(r.image_parts == 2 for r in gemini.requests)

    page.locator(".own-reference", has_text="banned").locator("button.remove").click()
    wait_until(
        lambda: page.locator(".own-reference").count() == 2,
        "the removed reference stayed",
        timeout_s=10,
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "own-style.png", full_page=True)
