import json

import pytest

from rag.articles import Article, ReadError, read_sources
from tests.conftest import CORPUS, SHARED, write

MB = 1_000_000


def _read(*paths, max_bytes=5 * MB):
    items = list(read_sources(paths, max_bytes))
    return [i for i in items if isinstance(i, Article)], [
        i for i in items if isinstance(i, ReadError)
    ]


def test_bundled_corpus_reads_with_front_matter():
    arts, errs = _read(CORPUS)
    assert errs == []
    ids = {a.id for a in arts}
    assert ids == {"000_f5788c6caecc39ad", "003_ed5bf04dcd149c8e"}
    seed = next(a for a in arts if a.id == "003_ed5bf04dcd149c8e")
    assert seed.title.startswith("Trump Asks Putin to Join Gaza")
    assert seed.date == "" and seed.authors == []
    assert not seed.text.startswith("---")


def test_markdown_front_matter_fields(tmp_path):
    write(
        tmp_path / "a" / "story.md",
        "---\ntitle: Budget passes\nsource: example.org\ndate: 2024-03-05\n"
        "authors: [Ann Lee, Bo Chen]\nurl: https://example.org/b\n---\n\nThe budget passed.\n",
    )
    write(tmp_path / "plain.txt", "No front matter here. Just text.\n")
    arts, errs = _read(tmp_path)
    assert errs == []
    by_id = {a.id: a for a in arts}
    story = by_id["a/story"]
    assert (story.title, story.source, story.date) == ("Budget passes", "example.org", "2024-03-05")
    assert story.authors == ["Ann Lee", "Bo Chen"]
    assert story.text.strip() == "The budget passed."
    assert by_id["plain"].text.startswith("No front matter")


HTML = """<!doctype html><html><head><title>Flood hits town - Daily News</title>
<meta property="og:site_name" content="Daily News">
<style>.x{color:red}</style><script>var tracking = "SCRIPT_PAYLOAD";</script></head>
<body><nav><a href="/">Home</a> <a href="/world">NAV_LINK_WORLD</a></nav>
<article><h1>Flood hits town</h1>
<p>Heavy rain flooded the river town of Ashford on Tuesday, forcing 300 residents to leave
their homes, the mayor said in a statement to reporters.</p>
<p>Emergency crews worked through the night to reinforce the levees along the river, and the
regional government promised funds for repairs once the water recedes.</p>
<p>Forecasters expect more rain later this week across the whole northern region.</p>
</article>
<div id="comments" class="comments"><h3>Leave a Reply</h3>
<form><textarea>COMMENT_FORM</textarea></form></div>
<footer>FOOTER_COPYRIGHT 2024</footer></body></html>"""


def test_html_keeps_main_text_only(tmp_path):
    write(tmp_path / "flood.html", HTML)
    arts, errs = _read(tmp_path / "flood.html")
    assert errs == []
    (a,) = arts
    assert "300 residents" in a.text and "reinforce the levees" in a.text
    for junk in (
        "SCRIPT_PAYLOAD",
        "NAV_LINK_WORLD",
        "COMMENT_FORM",
        ".x{color",
        "FOOTER_COPYRIGHT",
    ):
        assert junk not in a.text
    assert "Flood hits town" in a.title


RTQA_SAMPLE = [
    {
        "id": "rtqa-aaa",
        "title": "'Harbour Lights' renewed - Example News",
        "source": "news.example",
        "url": "https://news.example/x",
        "date": "2022-06-12",
        "authors": ["Ana Reporter"],
        "text": "Portmere (Example News) —\n\n“Harbour Lights” is back.\n\nIt was announced.",
    },
    {
        "id": "rtqa-bbb",
        "title": "Common charger rule",
        "source": "news.example",
        "url": "https://news.example/y",
        "date": "",
        "authors": [],
        "text": "The region will require a common charger.",
    },
]


def test_jsonl_in_realtimeqa_format(tmp_path):
    f = write(tmp_path / "c.jsonl", "\n".join(json.dumps(r) for r in RTQA_SAMPLE) + "\n")
    arts, errs = _read(f)
    assert errs == []
    assert [a.id for a in arts] == ["rtqa-aaa", "rtqa-bbb"]
    assert arts[0].authors == ["Ana Reporter"] and arts[0].date == "2022-06-12"
    assert arts[1].date == ""


@pytest.mark.skipif(not SHARED.exists(), reason="RealTime QA data not beside the checkout")
def test_realtimeqa_corpus_reads_as_it_is():
    arts, errs = _read(SHARED / "corpus.jsonl")
    assert errs == []
    assert len(arts) == 1086 and len({a.id for a in arts}) == 1086


def test_bad_inputs_are_reported_and_the_rest_is_read(tmp_path):
    write(tmp_path / "good.md", "A good article about the harbour.\n")
    write(tmp_path / "empty.md", "")
    write(tmp_path / "blank.txt", "  \n\n ")
    write(tmp_path / "binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR")
    write(tmp_path / "latin1.txt", "Caf\xe9 owners protest.".encode("latin-1"))
    write(tmp_path / "huge.md", b"word " * (10 * MB))  # 50 MB
    write(
        tmp_path / "lines.jsonl",
        json.dumps({"id": "ok1", "text": "Fine line."}) + "\n"
        "{not json\n"
        + json.dumps({"id": "nt", "title": "no text"})
        + "\n"
        + json.dumps(["a", "list"])
        + "\n"
        + json.dumps({"id": "ok2", "text": "Another fine line."})
        + "\n",
    )
    write(tmp_path / "notes.pdf", b"%PDF-1.4")  # unknown kinds in folders are skipped quietly
    arts, errs = _read(tmp_path)
    assert sorted(a.id for a in arts) == ["good", "ok1", "ok2"]
    reasons = {(e.path.rsplit("/", 1)[-1], e.line): e.reason for e in errs}
    assert "empty" in reasons[("empty.md", None)]
    assert "empty" in reasons[("blank.txt", None)]
    assert "binary" in reasons[("binary.txt", None)]
    assert "UTF-8" in reasons[("latin1.txt", None)]
    assert "MB" in reasons[("huge.md", None)] and "limit" in reasons[("huge.md", None)]
    assert "JSON" in reasons[("lines.jsonl", 2)]
    assert "text" in reasons[("lines.jsonl", 3)]
    assert "object" in reasons[("lines.jsonl", 4)]
    assert len(errs) == 8


def test_missing_and_unsupported_paths(tmp_path):
    write(tmp_path / "doc.pdf", b"%PDF")
    arts, errs = _read(tmp_path / "nope", tmp_path / "doc.pdf")
    assert arts == []
    assert "no such file" in errs[0].reason
    assert "unsupported" in errs[1].reason


# --- messages and HTML (issue 10, item 9) ---


@pytest.mark.parametrize("bad", ['"unterminated', '{"a": "\x01"}', "{not json"])
def test_json_errors_read_well(tmp_path, bad):
    f = write(tmp_path / "bad.jsonl", bad + "\n")
    (err,) = _read(f)[1]
    assert " at at " not in err.reason and "at column" in err.reason, err.reason


@pytest.mark.parametrize("tag", ["iframe", "noscript", "object", "template"])
def test_embedded_frames_are_not_article_text(tmp_path, tag):
    inner = f"<p>INNER_{tag.upper()} fallback text that a browser never shows as the story.</p>"
    page = (
        "<html><head><title>Short note</title></head><body><div>"
        "<p>The council met on Monday and approved the new budget for the harbour.</p>"
        f"<{tag}>{inner}</{tag}></div></body></html>"
    )
    (a,) = _read(write(tmp_path / "note.html", page))[0]
    assert "approved the new budget" in a.text
    assert "INNER" not in a.text
