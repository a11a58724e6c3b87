"""The web page in a real headless browser: Playwright drives Debian's chromium against a real server on
a free loopback port, serving the bundle trained on the synthetic data. Each step leaves a screenshot
in outputs/browser-screenshots/; axe-core (shipped by axe-playwright-python) checks accessibility."""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path

import pytest
from conftest import REPO_ROOT
from test_ab import _experiment
from test_engine import SCIFI_TEXT

pytestmark = pytest.mark.slow  # a browser and a server per module: `make test-all` (CI runs them)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the dev extra)")
axe_playwright = pytest.importorskip(
    "axe_playwright_python.sync_playwright", reason="axe-playwright-python is not installed (the dev extra)"
)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).is_file():
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)

from hybridrec.api.app import create_app  # noqa: E402
from hybridrec.api.settings import Settings  # noqa: E402

expect = sync_api.expect
SCREENSHOTS = REPO_ROOT / "outputs" / "browser-screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}
SERIOUS = {"serious", "critical"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(settings: Settings):
    """uvicorn serving the app in a thread on a free loopback port; yields (base URL, app)."""
    import uvicorn

    app = create_app(settings)
    port = _free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not uv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        uv.should_exit = True
        thread.join(timeout=20)


@pytest.fixture(scope="module")
def server(trained_bundle):
    with serving(Settings(bundle=str(trained_bundle), search_root="/nonexistent", rate_limit=None)) as served:
        yield served


@pytest.fixture(scope="module")
def browser():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots of the page: {SCREENSHOTS}")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_page(browser, base_url: str):
    """A fresh page at desktop size on the served page, its script errors collected."""
    context = browser.new_context(viewport=DESKTOP)
    opened = context.new_page()
    opened.errors = []
    opened.on("pageerror", lambda err: opened.errors.append(str(err)))
    opened.goto(base_url + "/")
    expect(opened.locator("#service")).to_contain_text("60 users")
    expect(opened.locator("#genre-list input").first).to_be_attached()  # the spec's bounds are in
    return context, opened


@pytest.fixture
def page(browser, server):
    """A fresh page at desktop size on the served page; fails the test on any script error."""
    context, opened = open_page(browser, server[0])
    yield opened
    context.close()
    assert not opened.errors, opened.errors


def shoot(page, name: str) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def axe_violations(page) -> list[str]:
    """axe-core's serious and critical violations of the page as it is now."""
    results = axe_playwright.Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v["impact"] in SERIOUS
    ]


def recommend_for_user(page, user_id: int, n: int = 5):
    page.get_by_label("User id").fill(str(user_id))
    page.get_by_label("How many films").fill(str(n))
    page.get_by_role("button", name="Recommend").click()
    expect(page.locator("#status")).to_contain_text(f"for user {user_id}")


def describe(page, text: str, n: int = 5):
    page.get_by_label("Describe yourself").check()
    page.get_by_label("About you").fill(text)
    page.get_by_label("How many films").fill(str(n))
    page.get_by_role("button", name="Recommend").click()


def test_the_page_loads_ready_to_use(page):
    assert page.title().startswith("hybridrec")
    assert page.locator("html").get_attribute("lang") == "en"
    expect(page.get_by_label("User id")).to_be_visible()
    expect(page.get_by_role("group", name=re.compile("Genres"))).to_be_visible()
    assert page.locator("#genre-list input").count() >= 5
    expect(page.locator("#user-text-count")).to_contain_text("of 2000 characters")
    shoot(page, "1-loaded")
    assert axe_violations(page) == []


def test_recommendations_for_a_known_user_with_profile_stars_and_reasons(page):
    page.get_by_label("Horror").check()
    page.get_by_label("Horror").uncheck()
    recommend_for_user(page, 5, n=5)
    films = page.locator("#list > li")
    expect(films).to_have_count(5)
    first = films.first
    expect(first.get_by_role("heading")).to_be_visible()
    expect(first.locator(".stars .sr-only")).to_have_text(re.compile(r"Predicted rating \d\.\d out of 5"))
    expect(first.locator(".why")).to_be_visible()  # the explanation, its films as buttons
    assert first.locator(".why button").count() >= 1
    expect(page.locator("#profile-title")).to_have_text("User 5")
    expect(page.locator("#profile-facts")).to_contain_text("Films rated")
    assert page.locator("#profile-top li").count() >= 1
    shoot(page, "2-known-user")
    assert axe_violations(page) == []


def test_recommendations_for_a_typed_description_in_chosen_genres(page):
    page.get_by_label("Sci-Fi").check()
    describe(page, SCIFI_TEXT, n=4)
    expect(page.locator("#status")).to_contain_text("for your description (a new user: cold start)")
    films = page.locator("#list > li")
    expect(films).to_have_count(4)
    for genres in films.locator(".genres").all_text_contents():
        assert "Sci-Fi" in genres
    expect(page.locator("#profile")).to_be_hidden()
    shoot(page, "3-description")
    assert axe_violations(page) == []


def test_clear_errors_unknown_user_empty_and_too_long_text(page):
    recommend_for_user_error = page.locator("#error")
    page.get_by_label("User id").fill("99999")
    page.get_by_role("button", name="Recommend").click()
    expect(recommend_for_user_error).to_have_text("Not found: unknown user_id 99999.")
    expect(page.locator("#list > li")).to_have_count(0)
    shoot(page, "4-unknown-user")

    page.get_by_label("Describe yourself").check()
    page.get_by_role("button", name="Recommend").click()
    expect(page.locator("#form-error")).to_contain_text("Describe yourself first")
    expect(page.get_by_label("About you")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("About you")).to_be_focused()
    shoot(page, "5-empty-text")

    page.get_by_label("About you").fill("x" * 2001)
    expect(page.locator("#user-text-count")).to_contain_text("1 too many")
    page.get_by_role("button", name="Recommend").click()
    expect(page.locator("#form-error")).to_contain_text("2001 characters; the limit is 2000")
    shoot(page, "6-text-too-long")
    assert axe_violations(page) == []


def test_the_service_down_is_a_readable_message(page):
    page.route("**/recommend", lambda route: route.abort("connectionrefused"))
    page.route("**/users/*", lambda route: route.abort("connectionrefused"))
    page.get_by_role("button", name="Recommend").click()
    expect(page.locator("#error")).to_contain_text("The service is not answering")
    shoot(page, "7-service-down")


def test_a_slow_answer_shows_it_is_loading_and_an_empty_list_says_so(page):
    held = []
    page.route("**/recommend", lambda route: held.append(route))  # it waits until the test lets it through
    page.get_by_role("button", name="Recommend").click()
    expect(page.locator("#status")).to_have_text("Finding films…")
    expect(page.get_by_role("button", name="Recommend")).to_be_disabled()
    expect(page.locator("#results")).to_have_attribute("aria-busy", "true")
    held[0].fulfill(json={"items": [], "cold_start": False, "explainer": None})
    expect(page.locator("#status")).to_contain_text("No film to recommend")
    expect(page.get_by_role("button", name="Recommend")).to_be_enabled()
    expect(page.locator("#results")).to_have_attribute("aria-busy", "false")


def test_a_film_opens_with_its_details_and_nearest_films(page):
    recommend_for_user(page, 3, n=3)
    first = page.locator("#list > li").first
    title = first.get_by_role("heading").get_by_role("button").inner_text()
    first.get_by_role("heading").get_by_role("button").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#film-title")).to_contain_text(title)
    expect(dialog.locator("#film-facts")).to_contain_text("predicted")
    nearest = dialog.locator("#film-similar li")
    expect(nearest).to_have_count(8)
    expect(page.locator("#film-close")).to_be_focused()
    shoot(page, "8-film")
    assert axe_violations(page) == []
    next_title = nearest.first.get_by_role("button").inner_text()
    nearest.first.get_by_role("button").click()  # a nearest film opens in its turn
    expect(dialog.locator("#film-title")).to_contain_text(next_title)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_the_page_works_from_the_keyboard(page):
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to the recommendations")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("A user of the data")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("User id")).to_be_focused()
    page.keyboard.type("14")  # the focus selected the field's 1: typing replaces it
    page.keyboard.press("Enter")  # submits the form
    expect(page.locator("#status")).to_contain_text("for user 14")
    title_button = page.locator("#list > li").first.get_by_role("heading").get_by_role("button")
    title_button.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(title_button).to_be_focused()  # the focus goes back where it was


def test_at_phone_width_nothing_overflows(browser, server):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    phone = context.new_page()
    phone.goto(server[0] + "/")
    expect(phone.locator("#genre-list input").first).to_be_attached()
    recommend_for_user(phone, 5, n=4)
    expect(phone.locator("#list > li")).to_have_count(4)
    widths = phone.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1] == PHONE["width"]
    shoot(phone, "9-phone-known-user")
    phone.locator("#list > li").first.get_by_role("heading").get_by_role("button").click()
    expect(phone.locator("#film-similar li")).to_have_count(8)
    box = phone.get_by_role("dialog").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    shoot(phone, "10-phone-film")
    phone.keyboard.press("Escape")
    describe(phone, SCIFI_TEXT, n=3)
    expect(phone.locator("#list > li")).to_have_count(3)
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shoot(phone, "11-phone-description")
    assert axe_violations(phone) == []
    context.close()


# --- colours: the style sheet's pairs pass WCAG AA ------------------------------------------------


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[k : k + 2], 16) / 255 for k in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(one: str, other: str) -> float:
    high, low = sorted((_luminance(one), _luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_style_sheets_colours_have_enough_contrast():
    css = (REPO_ROOT / "src" / "hybridrec" / "api" / "static" / "page.css").read_text()
    colours = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-f]{6});", css))
    text_pairs = [  # (foreground, background): 4.5:1 for text
        ("text", "background"),
        ("text", "surface"),
        ("muted", "surface"),
        ("muted", "background"),
        ("accent", "surface"),
        ("accent", "background"),
        ("accent-text", "accent"),
        ("star", "surface"),
        ("error", "error-surface"),
    ]
    for fore, back in text_pairs:
        assert _contrast(colours[fore], colours[back]) >= 4.5, (fore, back)
    for fore, back in [("focus", "surface"), ("focus", "background"), ("border", "surface")]:
        assert _contrast(colours[fore], colours[back]) >= 3, (fore, back)  # outlines and borders


def test_the_accessibility_tree_names_every_control(page):
    recommend_for_user(page, 2, n=3)
    tree = page.locator("body").aria_snapshot()
    (SCREENSHOTS / "aria-snapshot.yaml").write_text(tree)
    levels = [int(level) for level in re.findall(r"heading .*\[level=(\d)\]", tree)]
    assert levels[0] == 1 and all(b <= a + 1 for a, b in pairwise(levels))
    unnamed = re.findall(r"- (button|textbox|spinbutton|checkbox|radio|link)\s*(?::|$)", tree, re.M)
    assert not unnamed, unnamed
    assert page.locator("img:not([alt])").count() == 0


# --- the A/B experiment (issue 36's API) ----------------------------------------------------------


def test_without_an_experiment_the_feedback_controls_stay_hidden(page):
    recommend_for_user(page, 2, n=3)
    expect(page.locator("#experiment")).to_be_hidden()
    expect(page.get_by_role("button", name=re.compile("Watched it"))).to_have_count(0)


def test_during_an_experiment_the_page_shows_the_variant_and_sends_feedback(
    browser, trained_bundle, tmp_path
):
    """A service running an A/B experiment (the model against popularity lists): the page says which
    variant answered; "watched it" and "not interested" reach the event log as feedback, from the
    user's id, or for a new user from the session id the page keeps (sent with cold-start asks)."""
    from hybridrec.ab.events import read_log

    log = tmp_path / "events.sqlite3"
    experiment = _experiment(log)  # the model against popularity lists, half the users each
    settings = Settings(
        bundle=str(trained_bundle), search_root="/nonexistent", rate_limit=None, experiment=experiment
    )
    with serving(settings) as (url, _):
        context, page = open_page(browser, url)
        recommend_for_user(page, 2, n=3)
        expect(page.locator("#experiment")).to_contain_text(
            re.compile(r"variant (default|popularity) answered")
        )
        first = page.locator("#list > li").first
        first.get_by_role("button", name=re.compile("^Watched it")).click()
        expect(first.locator(".feedback [role=status]")).to_have_text("Thanks: noted as watched.")
        shoot(page, "12-experiment")

        describe(page, SCIFI_TEXT, n=3)
        expect(page.locator("#status")).to_contain_text("cold start")
        page.locator("#list > li").first.get_by_role("button", name=re.compile("^Not interested")).click()
        expect(page.locator("#list > li").first.locator(".feedback [role=status]")).to_contain_text(
            "not interested"
        )
        session = page.evaluate("sessionStorage.getItem('hybridrec.session_id')")
        context.close()
        assert not page.errors, page.errors
    assert re.fullmatch(r"[0-9a-f]{32}", session)
    events, _ = read_log(log)
    feedback = events[events["kind"] != "exposure"]
    assert list(feedback["kind"]) == ["watch", "dismiss"]
    assert list(feedback["unit"]) == ["user:2", f"session:{session}"]
    assert set(events.loc[events["kind"] == "exposure", "unit"]) == {"user:2", f"session:{session}"}
