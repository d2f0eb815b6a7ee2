"""Snakemake's HTML report of a finished run, opened in a real headless Chromium.

The report is a single self-contained page (a React app with every result embedded as a data
URI). The test opens it from disk, shows every figure through the report's own viewer, checks
that each one decodes to a real image, takes screenshots, and fails on any console error or
uncaught page error. Chromium is Debian's (tests/browser/install.sh installs it when missing,
as root); Playwright drives it. Where it cannot be installed, the test skips and says why.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import EMPTY_IN_MICRO, REPO

from infscale.outputs import FIGURES, TABLES

# As the machine's notes advise: without the networking flags Chromium keeps trying to reach
# hosts this closed network refuses.
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
def chromium() -> str:
    done = subprocess.run(
        [str(REPO / "tests" / "browser" / "install.sh")], capture_output=True, text=True
    )
    if done.returncode == 3:
        pytest.skip(done.stderr.strip())
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_report_opens_without_errors_and_shows_every_figure(chromium, micro_report_html, tmp_path):
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(micro_report_html.as_uri())
        page.wait_for_function("() => typeof app !== 'undefined'")
        page.screenshot(path=tmp_path / "landing.png")
        embedded = page.evaluate(
            "() => Object.fromEntries(Object.entries(results).map(([p, r]) => [p, r.mime_type]))"
        )
        by_name = {Path(path).name: (path, mime) for path, mime in embedded.items()}
        wanted = {f"{name}.png": "image/png" for name in FIGURES}
        wanted |= {f"{name}.html": "text/html" for name in TABLES}
        assert {name: by_name.get(name, (None, None))[1] for name in wanted} == wanted

        # Through the navigation a reader uses: category, then subcategory, lists the files.
        categories = page.evaluate("() => categories")
        for category in sorted({*FIGURES.values(), *TABLES.values()}):
            page.evaluate("() => app.setView({navbarMode: 'menu'})")
            # .first: the navigation's entry, not the front page's story linking to it
            page.get_by_text(category, exact=True).first.click()
            subcategories = list(categories[category])
            if len(subcategories) == 1:  # the app opens a lone subcategory at once
                listed = page.inner_text("body")
            else:
                listed = ""
                for subcategory in subcategories:
                    page.get_by_text(subcategory, exact=True).first.click()
                    listed += page.inner_text("body")
                    page.get_by_text(category, exact=True).first.click()  # its breadcrumb
            members = [f"{n}.png" for n, c in FIGURES.items() if c == category]
            members += [f"{n}.html" for n, c in TABLES.items() if c == category]
            assert [m for m in members if m not in listed] == [], category

        # Every figure shown by the report's own viewer decodes to a real image.
        for name in FIGURES:
            path = by_name[f"{name}.png"][0]
            page.evaluate(SHOW, {"path": path, "content": "img"})
            shown = page.wait_for_function(
                "path => [...document.images].find("
                " img => img.src === results[path].data_uri && img.complete)",
                arg=path,
            )
            size = shown.evaluate("img => [img.naturalWidth, img.naturalHeight]")
            assert min(size) > 100, (name, size)
            page.screenshot(path=tmp_path / f"{name}.png")
        # Every table opens in its frame with a header row and at least one data row; the
        # tables the micro config leaves empty say why.
        for name in TABLES:
            path = by_name[f"{name}.html"][0]
            page.evaluate(SHOW, {"path": path, "content": "html"})
            frame = page.wait_for_selector("iframe").content_frame()
            frame.wait_for_selector("table th")
            if name in EMPTY_IN_MICRO:
                assert EMPTY_IN_MICRO[name] in frame.content(), name
                continue
            assert frame.locator("table tr").count() >= 2, name
        browser.close()
    assert not errors, errors
    assert (tmp_path / "accuracy_vs_latency.png").stat().st_size > 10_000


# The report app's own view switch (what its result buttons call), for one embedded result.
SHOW = (
    "({path, content}) => app.setView("
    "{content: content, contentPath: results[path].data_uri, resultPath: path})"
)
