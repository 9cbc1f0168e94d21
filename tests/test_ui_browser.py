"""The chat UI in a real browser: Debian's Chromium driven by Playwright, against `rag serve`
with the real bundled model. Screenshots of each step go to test-artifacts/ui/."""

import html
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

# Three outlets on one story: two state the same figure, one another (invented town and figures).
LIBRARY = {
    "north-gazette": (
        "Readers in Orlen have borrowed books from a school hall since the fire.",
        "Orlen town council approved 4.2 million euros for the new library on Tuesday.",
    ),
    "river-post": (
        "The old library burned down two winters ago and was never rebuilt.",
        "Orlen town council approved 4.2 million euros for the new library on Tuesday, "
        "the mayor said.",
    ),
    "east-herald": (
        "Builders have already fenced off the site beside the market square.",
        "Orlen town council approved 4.5 million euros for the new library on Tuesday, "
        "officials said.",
    ),
}

FERRY_ARTICLE = """---
title: Orsby ferry service resumes after winter pause
source: coast-news.example
date: 2025-03-18
---

The ferry between Orsby and Kalvik resumed service on Monday after a three-month winter pause.
Ice on the northern sound had kept the boats in harbour since the middle of December, and
islanders had relied on a weekly supply flight for mail, medicine and fresh food.

Port authority spokeswoman Edda Lindqvist said the first crossing carried 212 passengers.
She added that the morning departure had been fully booked within an hour of tickets going on
sale, and that extra staff would help with luggage at both quays for the first week.

The operator, Nordvik Lines, plans to add a second boat to the route in June. The company
said the new vessel, built at a yard in Kalvik, can carry forty cars and will halve the
waiting time at peak hours during the summer season.

Shop owners in Orsby welcomed the return of the service. The baker on the harbour front said
deliveries of flour had run low in February, and the hardware store had stopped taking orders
for heavy goods until the boats came back.

The crossing takes about fifty minutes in calm weather. Timetables for the spring are posted
at both terminals and on the operator's notice boards in the town halls of Orsby and Kalvik.
"""
SPOKESWOMAN = "Who is the port authority spokeswoman quoted about the Orsby ferry?"

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
    write(corpus / "ferry.md", FERRY_ARTICLE)
    for outlet, (before, fact) in LIBRARY.items():
        write(
            corpus / f"{outlet}.md",
            f"---\ntitle: Orlen library funding approved\nsource: {outlet}.example\n"
            f"date: 2025-10-07\n---\n\n{before}\n\n{fact}\n",
        )
    port = free_port()
    cmd = [sys.executable, "-m", "rag.cli", "serve", "--port", str(port), "--corpus", str(corpus)]
    # The feed test serves its site on 127.0.0.1: trusted here, and read without pauses.
    env = {
        **os.environ,
        "RAG_DATA_DIR": str(data),
        "RAG_WEB_ALLOW_PRIVATE": "true",
        "RAG_WEB_HOST_DELAY": "0",
    }
    url = f"http://127.0.0.1:{port}"
    with running_server(cmd, url, tmp, env=env, cwd=ROOT):
        yield url, tmp


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(
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
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    """A fresh page for each test, so no test depends on what another left behind."""
    pg = browser.new_page(viewport={"width": 1400, "height": 1000})
    pg.requests = []
    pg.on("request", lambda r: pg.requests.append(r.url))
    pg.goto(server[0])
    pg.wait_for_selector("#question textarea")
    pg.wait_for_function("document.querySelector('#status')?.innerText.includes('articles')")
    yield pg
    pg.close()


def answers(page) -> int:
    return page.evaluate("document.querySelectorAll('#chat .answer').length")


def ask(page, question: str) -> None:
    """Ask and wait for a new checked answer (not one already on the page)."""
    before = answers(page)
    page.fill("#question textarea", question)
    page.click("#ask")
    # The draft streams in first; the checked answer replaces it.
    page.wait_for_function(
        f"document.querySelectorAll('#chat .answer').length > {before}", timeout=120_000
    )


def last_answer(page):
    return page.locator("#chat .answer").last


def indexed_articles(page) -> int:
    import re

    m = re.search(r"(\d+)\s+articles", page.inner_text("#status"))
    assert m, page.inner_text("#status")
    return int(m.group(1))


def test_ask_and_see_a_streamed_cited_answer(page):
    page.screenshot(path=SHOTS / "01-loaded.png")
    # bundled + gala + ferry + library
    assert indexed_articles(page) == len(list(CORPUS.glob("*.md"))) + 2 + len(LIBRARY)
    page.fill("#question textarea", SPOKESWOMAN)
    page.click("#ask")
    page.wait_for_selector("#chat .draft", timeout=60_000)  # streaming draft visible
    page.wait_for_function(
        "document.querySelectorAll('#chat .answer').length >= 1", timeout=120_000
    )
    ans = last_answer(page)
    assert "Lindqvist" in ans.inner_text()
    assert ans.locator("sup.cite").count() >= 1
    page.screenshot(path=SHOTS / "02-answer.png")


def test_open_a_citation_and_see_the_passage_in_its_article(page):
    ask(page, SPOKESWOMAN)
    src = last_answer(page).locator("details.source").first
    src.locator("summary").click()
    mark = src.locator(".passage mark")
    mark.wait_for(state="visible")
    assert "Lindqvist" in mark.inner_text() or "spokeswoman" in mark.inner_text()
    assert len(src.locator(".passage").inner_text()) > len(mark.inner_text())  # context around
    page.screenshot(path=SHOTS / "03-citation-open.png")


def test_follow_up_in_the_same_conversation(page):
    ask(page, SPOKESWOMAN)
    ask(page, "And which company operates it?")
    assert answers(page) == 2
    assert last_answer(page).inner_text().strip()
    page.screenshot(path=SHOTS / "04-follow-up.png")


# Holds back the page's next request to the server's queue, as a busy network would: a reset
# that needs a round trip then arrives after the question that followed it.
DELAY_NEXT_QUEUE_REQUEST = """() => {
  const original = window.fetch;
  let pending = true;
  window.fetch = async (...args) => {
    const url = String(args[0]?.url ?? args[0]);
    if (pending && url.includes("/queue/join")) {
      pending = false;
      await new Promise((resolve) => setTimeout(resolve, 1500));
    }
    return original(...args);
  };
}"""


def test_a_question_right_after_new_conversation_is_answered_alone(page):
    ask(page, SPOKESWOMAN)
    page.evaluate(DELAY_NEXT_QUEUE_REQUEST)
    page.click("#new-chat")  # no wait: the next question must not be lost or mixed in
    page.fill("#question textarea", "What did organisers of the Tarnby harbour gala write?")
    page.click("#ask")
    page.wait_for_function(
        "document.querySelectorAll('#chat .answer').length == 1 && "
        "!document.querySelector('#chat .draft')",
        timeout=120_000,
    )
    page.wait_for_timeout(1000)  # a late reply from the old conversation would show up here
    assert answers(page) == 1
    assert "Tarnby" in page.inner_text("#chat") and "Lindqvist" not in page.inner_text("#chat")


def test_upload_an_article_and_ask_about_it(page, server, browser):
    before = indexed_articles(page)
    f = write(server[1] / "upload" / "bridge.md", UPLOADED)
    page.set_input_files("#upload input[type=file]", str(f))
    page.wait_for_function(
        "document.querySelector('#upload-result')?.innerText.includes('Ingested')",
        timeout=120_000,
    )
    assert "1 added" in page.inner_text("#upload-result")
    page.wait_for_function(
        "(document.querySelector('#status').innerText.match(/(\\d+)\\s+articles/) || [])[1] "
        f"== '{before + 1}'"
    )
    page.screenshot(path=SHOTS / "05-upload.png")
    ask(page, "Which engineer designed the glass bridge in Vellan?")
    ans = last_answer(page)
    assert "Glass bridge opens in Vellan" in ans.inner_text()  # cites the uploaded article
    assert "Quist" in ans.inner_text()
    page.screenshot(path=SHOTS / "06-upload-answer.png")
    # A page opened afterwards shows the new count and offers the new source.
    other = browser.new_page()
    other.goto(server[0])
    other.wait_for_function("document.querySelector('#status')?.innerText.includes('articles')")
    assert indexed_articles(other) == before + 1
    other.close()


def test_upload_of_an_unsupported_type_says_what_is_accepted(page, server):
    f = write(server[1] / "upload" / "scan.pdf", b"%PDF-1.4 not an article")
    page.set_input_files("#upload input[type=file]", str(f))
    page.wait_for_function(
        "document.querySelector('#upload-result')?.innerText.includes('scan.pdf')",
        timeout=60_000,
    )
    text = page.inner_text("#upload-result")
    assert "not a supported type" in text and ".jsonl" in text


def test_article_html_and_script_are_shown_inert(page):
    ask(page, "What did organisers of the Tarnby harbour gala write on the programme?")
    ans = last_answer(page)
    for d in ans.locator("details.source").all():
        d.locator("summary").click()
    text = ans.inner_text()
    assert "<script>" in text or "<img" in text  # shown as text...
    assert page.evaluate("window.__xss") is None  # ...and never run
    assert ans.locator("script").count() == 0 and ans.locator("img").count() == 0
    page.screenshot(path=SHOTS / "07-xss-inert.png")
    hosts = {urlparse(u).hostname for u in page.requests if u.startswith("http")}
    assert hosts == {"127.0.0.1"}, hosts  # no request left the machine


# ---- corrections, articles, feeds


def test_a_wrong_answer_is_corrected_and_recorded_in_the_answer_log(page, server):
    from rag.answer_log import LOG_FILE, AnswerLog

    ask(page, "What did organisers of the Tarnby harbour gala write on the programme?")
    bot = page.locator("#chat .message-row.bot-row, #chat [data-testid='bot']").last
    bot.hover()
    page.locator("#chat button[aria-label='Dislike']").last.click()
    page.wait_for_selector("#correction", state="visible")
    assert "marked wrong" in page.inner_text("#feedback-note")
    page.fill("#correct-answer textarea", "80,000 euros for the Tarnby lifeboat crew")
    page.click("#save-correction")
    page.wait_for_function(
        "document.querySelector('#feedback-note')?.innerText.includes('corrected')"
    )
    page.screenshot(path=SHOTS / "08-correction.png")
    entry = AnswerLog(server[1] / "data" / LOG_FILE).recent(1)[0]
    assert entry["question"].startswith("What did organisers of the Tarnby harbour gala")
    assert entry["feedback"]["verdict"] == "wrong"
    assert entry["feedback"]["answer"] == "80,000 euros for the Tarnby lifeboat crew"


def test_a_date_is_picked_from_the_calendar(page):
    page.click("#as-of button")  # the calendar button next to the field
    page.locator("button.day:not(.other-month)").first.click()
    value = page.input_value("#as-of input")
    assert len(value) == 10 and value[4] == "-" and value[7] == "-", value


def test_the_articles_view_lists_searches_and_opens_an_article_as_text(page):
    page.get_by_role("tab", name="Articles").click()
    page.wait_for_function(
        "document.querySelector('#article-count')?.innerText.includes('articles')"
    )
    total = int(page.inner_text("#article-count").split()[0])
    assert total >= len(list(CORPUS.glob("*.md"))) + 1
    page.fill("#article-search textarea, #article-search input", "harbour gala")
    page.wait_for_function("document.querySelector('#article-count')?.innerText.startsWith('1 of')")
    title = page.locator("#article-table").get_by_test_id("cell-0-2")
    assert title.inner_text() == "Harbour gala raises funds"
    title.click()
    page.wait_for_function(
        "document.querySelector('#article-text textarea')?.value.includes('Tarnby')"
    )
    text = page.input_value("#article-text textarea")
    assert "<script>" in text  # the article's markup is shown as text...
    assert page.evaluate("window.__xss") is None  # ...and never run
    assert "Harbour gala raises funds" in page.inner_text("#article-head")
    page.screenshot(path=SHOTS / "09-articles.png")


def test_a_feed_added_in_the_ui_is_ingested_listed_and_removed(page):
    from tests.local_site import news_site

    with news_site() as (_site, feed):
        before = indexed_articles(page)
        page.get_by_role("tab", name="Feeds").click()
        page.fill("#feed-url textarea, #feed-url input", "ftp://127.0.0.1/feed.xml")
        page.click("#feed-add")
        page.wait_for_function(
            "document.querySelector('#feed-note')?.innerText.includes('Not added')"
        )
        assert "https://" in page.inner_text("#feed-note")
        page.fill("#feed-url textarea, #feed-url input", feed)
        page.click("#feed-add")
        page.wait_for_function(
            "document.querySelector('#feed-note')?.innerText.includes('Watching')",
            timeout=120_000,
        )
        assert "2 added" in page.inner_text("#feed-note")
        assert feed in page.inner_text("#feed-table")
        assert "2 added" in page.inner_text("#feed-table")
        page.screenshot(path=SHOTS / "10-feed-added.png")
        page.get_by_role("tab", name="Ask").click()
        page.wait_for_function(
            "(document.querySelector('#status').innerText.match(/(\\d+)\\s+articles/) || [])[1] "
            f"== '{before + 2}'"
        )
        page.get_by_role("tab", name="Feeds").click()
        page.locator("#feed-pick input").click()
        page.get_by_role("option", name=feed).click()
        page.click("#feed-remove")
        page.wait_for_function(
            "document.querySelector('#feed-note')?.innerText.includes('Stopped watching')"
        )
        assert feed not in page.inner_text("#feed-table")


def test_an_answer_stated_by_several_outlets_shows_them_and_where_they_differ(page):
    ask(page, "How much did Orlen town council approve for the new library?")
    short = last_answer(page).locator(".short-answer")
    assert "(2 sources)" in short.inner_text()
    assert short.locator("sup.cite").count() >= 2
    differ = last_answer(page).locator(".sources-differ")
    assert "4.5 million" in differ.inner_text() and "4.2 million" in differ.inner_text()
    page.screenshot(path=SHOTS / "11-corroboration.png")


def test_the_chat_api_keeps_its_documented_arguments(server):
    """README: predict(question, chat, source, since, until, top-k, as-of, api_name="/ask")."""
    from gradio_client import Client

    def said(chat: list[dict]) -> str:  # a message's content comes as a list of parts
        return html.unescape("".join(part["text"] for part in chat[-1]["content"]))

    client = Client(server[0], verbose=False)
    chat, box = client.predict(SPOKESWOMAN, [], "", "", "", 6, "", api_name="/ask")
    assert box == "" and "Lindqvist" in said(chat)
    chat, _ = client.predict(SPOKESWOMAN, [], "", "", "", 6, "someday", api_name="/ask")
    assert "As of: 'someday' is not a date" in said(chat)
