"""The chat UI in a real browser: Debian's Chromium driven by Playwright, against `rag serve`
with the real bundled model. Screenshots of each step go to test-artifacts/ui/."""

import os
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.conftest import CORPUS, ROOT, free_port, running_server, write

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "test-artifacts" / "ui"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="run scripts/install-browser.sh first"),
]

XSS_ARTICLE = """---
title: Harbour gala raises funds
source: xss.example
date: 2025-05-04
---

The harbour gala in Tarnby raised 80,000 euros for the lifeboat crew on Saturday.
Organisers wrote <script>window.__xss = 1</script> on the programme by mistake.
A poster showed <img src="x" onerror="window.__xss = 2"> next to the lifeboat photo.
"""

UPLOADED = """---
title: Glass bridge opens in Vellan
source: upload.example
date: 2025-09-12
---

A glass footbridge over the Vellan gorge opened on Thursday after three years of work.
The bridge is 140 metres long and was designed by engineer Mara Quist.
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ui")
    data = tmp / "data"
    corpus = tmp / "corpus"
    for f in CORPUS.glob("*.md"):
        write(corpus / f.name, f.read_text())
    write(corpus / "gala.md", XSS_ARTICLE)
    port = free_port()
    cmd = [sys.executable, "-m", "rag.cli", "serve", "--port", str(port), "--corpus", str(corpus)]
    env = {**os.environ, "RAG_DATA_DIR": str(data)}
    url = f"http://127.0.0.1:{port}"
    with running_server(cmd, url, tmp, env=env, cwd=ROOT):
        yield url, tmp


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.requests = []
        pg.on("request", lambda r: pg.requests.append(r.url))
        pg.goto(server[0])
        pg.wait_for_selector("#question textarea")
        yield pg
        browser.close()


def ask(page, question: str, n_answers: int) -> None:
    page.fill("#question textarea", question)
    page.click("#ask")
    # The draft streams in first; the checked answer replaces it.
    page.wait_for_function(
        f"document.querySelectorAll('#chat .answer').length >= {n_answers}", timeout=120_000
    )


def last_answer(page):
    return page.locator("#chat .answer").last


def test_1_ask_and_see_a_streamed_cited_answer(page):
    page.screenshot(path=SHOTS / "01-loaded.png")
    assert "2" in page.inner_text("#status") or "3" in page.inner_text("#status")
    page.fill("#question textarea", "Who is the Kremlin spokesman quoted about the invitation?")
    page.click("#ask")
    page.wait_for_selector("#chat .draft", timeout=60_000)  # streaming draft visible
    page.wait_for_function(
        "document.querySelectorAll('#chat .answer').length >= 1", timeout=120_000
    )
    ans = last_answer(page)
    assert "Peskov" in ans.inner_text()
    assert ans.locator("sup.cite").count() >= 1
    page.screenshot(path=SHOTS / "02-answer.png")


def test_2_open_a_citation_and_see_the_passage_in_its_article(page):
    src = last_answer(page).locator("details.source").first
    src.locator("summary").click()
    mark = src.locator(".passage mark")
    mark.wait_for(state="visible")
    assert "Peskov" in mark.inner_text() or "Kremlin" in mark.inner_text()
    assert len(src.locator(".passage").inner_text()) > len(mark.inner_text())  # context around
    page.screenshot(path=SHOTS / "03-citation-open.png")


def test_3_follow_up_in_the_same_conversation(page):
    ask(page, "And who else was invited to the board?", 2)
    text = last_answer(page).inner_text()
    assert text.strip()
    page.screenshot(path=SHOTS / "04-follow-up.png")
    page.click("#new-chat")
    page.wait_for_function("document.querySelectorAll('#chat .answer').length == 0")


def test_4_upload_an_article_and_ask_about_it(page, server):
    f = write(server[1] / "upload" / "bridge.md", UPLOADED)
    page.set_input_files("#upload input[type=file]", str(f))
    page.wait_for_function(
        "document.querySelector('#upload-result')?.innerText.includes('Ingested')",
        timeout=120_000,
    )
    assert "1 added" in page.inner_text("#upload-result")
    page.screenshot(path=SHOTS / "05-upload.png")
    ask(page, "Which engineer designed the glass bridge in Vellan?", 1)
    ans = last_answer(page)
    assert "Glass bridge opens in Vellan" in ans.inner_text()  # cites the uploaded article
    assert "Quist" in ans.inner_text()
    page.screenshot(path=SHOTS / "06-upload-answer.png")


def test_5_article_html_and_script_are_shown_inert(page):
    page.click("#new-chat")
    ask(page, "What did organisers of the Tarnby harbour gala write on the programme?", 1)
    ans = last_answer(page)
    for d in ans.locator("details.source").all():
        d.locator("summary").click()
    text = ans.inner_text()
    assert "<script>" in text or "<img" in text  # shown as text...
    assert page.evaluate("window.__xss") is None  # ...and never run
    assert ans.locator("script").count() == 0 and ans.locator("img").count() == 0
    page.screenshot(path=SHOTS / "07-xss-inert.png")


def test_6_no_request_leaves_the_machine(page):
    hosts = {urlparse(u).hostname for u in page.requests if u.startswith("http")}
    assert hosts == {"127.0.0.1"}, hosts
