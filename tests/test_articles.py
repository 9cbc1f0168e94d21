import json
import os
import shutil
import tempfile
from pathlib import Path

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
    story = by_id[f"{tmp_path.name}/a/story"]
    assert (story.title, story.source, story.date) == ("Budget passes", "example.org", "2024-03-05")
    assert story.authors == ["Ann Lee", "Bo Chen"]
    assert story.text.strip() == "The budget passed."
    assert by_id[f"{tmp_path.name}/plain"].text.startswith("No front matter")


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
    assert {a.id for a in arts} == {f"{tmp_path.name}/good", "ok1", "ok2"}
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


# --- folders that cannot be read, symlinked folders (issue 10, item 4) ---

NOBODY = 65534  # the conventional unprivileged uid/gid


@pytest.fixture
def open_tmp():
    """A temporary folder an unprivileged user can enter (pytest's own is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="articles-"))
    folder.chmod(0o755)
    yield folder
    for dirpath, dirnames, _ in os.walk(folder):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o755, follow_symlinks=False)
    shutil.rmtree(folder)


def _read_unprivileged(*paths) -> list[tuple[str, str, int | None, str]]:
    """Read as a user without root's right to read anything, so chmod 000 really blocks.

    As root, a forked child drops to `nobody` first; it reads once as root beforehand so the
    modules and codecs it needs are already imported (the interpreter lives in /root).
    """

    def summary() -> list[tuple[str, str, int | None, str]]:
        return [
            ("article", i.id, None, i.path)
            if isinstance(i, Article)
            else ("error", i.path, i.line, i.reason)
            for i in read_sources(paths, 5 * MB)
        ]

    if os.geteuid() != 0:
        return summary()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 1
        try:
            os.close(r)
            summary()
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(w, json.dumps(summary()).encode())
            status = 0
        except BaseException as e:  # report it to the parent instead of dying silently
            os.write(w, json.dumps({"error": repr(e)}).encode())
        finally:
            os._exit(status)
    os.close(w)
    data = b""
    while chunk := os.read(r, 1 << 16):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    result = json.loads(data)
    if isinstance(result, dict):
        if "setuid" in result["error"] or "setgroups" in result["error"]:
            pytest.skip(f"cannot drop root privileges here: {result['error']}")
        raise AssertionError(result["error"])
    return [tuple(x) for x in result]


def test_unreadable_folder_is_reported_with_its_exact_path(open_tmp):
    news = open_tmp / "news"
    write(news / "ok" / "a.md", "An article that can be read.\n")
    write(news / "locked" / "b.md", "An article in a folder nobody may read.\n")
    for p in (news, news / "ok", news / "ok" / "a.md"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    (news / "locked").chmod(0)
    items = _read_unprivileged(news)
    errors = [i for i in items if i[0] == "error"]
    assert len(errors) == 1
    _, path, line, reason = errors[0]
    assert path == str((news / "locked").resolve()) and line is None
    assert "ermission denied" in reason and "chmod" in reason and "--prune" in reason
    assert [i[1] for i in items if i[0] == "article"] == ["news/ok/a"]


def test_unreadable_folder_named_directly_is_reported(open_tmp):
    locked = write(open_tmp / "locked" / "b.md", "Text.\n").parent
    locked.chmod(0)
    items = _read_unprivileged(locked)
    assert [(i[0], i[1]) for i in items] == [("error", str(locked.resolve()))]


def test_symlinked_folders_are_followed_once(tmp_path):
    outside = write(tmp_path / "elsewhere" / "sub" / "far.md", "Far away text.\n").parent.parent
    news = tmp_path / "news"
    write(news / "real" / "near.md", "Near text.\n")
    (news / "linked").symlink_to(outside, target_is_directory=True)
    (news / "real" / "loop").symlink_to(news, target_is_directory=True)  # back to the top
    (news / "again").symlink_to(news / "real", target_is_directory=True)  # read at its own place
    (news / "real" / "up").symlink_to(tmp_path, target_is_directory=True)  # holds the top
    write(tmp_path / "private" / "diary.md", "Not news: reached only through `up`.\n")
    arts, errs = _read(news)
    assert errs == []
    assert sorted(a.id for a in arts) == ["news/linked/sub/far", "news/real/near"]
    far = next(a for a in arts if a.id == "news/linked/sub/far")
    assert far.path == str((outside / "sub" / "far.md").resolve())


def test_broken_folder_link_is_reported_at_its_target(tmp_path):
    news = tmp_path / "news"
    write(news / "a.md", "Text.\n")
    (news / "archive").symlink_to(tmp_path / "unmounted" / "archive")
    arts, errs = _read(news)
    assert [a.id for a in arts] == ["news/a"]
    (err,) = errs
    assert err.path == str(tmp_path / "unmounted" / "archive")
    assert str(news / "archive") in err.reason and "cannot read" in err.reason


# --- ids (issue 10, item 5) ---


def test_ids_carry_the_named_folder_so_folders_do_not_collide(tmp_path):
    write(tmp_path / "cnn" / "2024-01-01.md", "CNN's story.\n")
    write(tmp_path / "bbc" / "2024-01-01.md", "BBC's story.\n")
    write(tmp_path / "bbc" / "world" / "2024-01-02.txt", "BBC's world story.\n")
    assert [a.id for a in _read(tmp_path / "cnn")[0]] == ["cnn/2024-01-01"]
    assert [a.id for a in _read(tmp_path / "bbc")[0]] == ["bbc/2024-01-01", "bbc/world/2024-01-02"]
    single = _read(tmp_path / "cnn" / "2024-01-01.md", tmp_path / "bbc" / "2024-01-01.md")[0]
    assert [a.id for a in single] == ["cnn/2024-01-01", "bbc/2024-01-01"]
    both = _read(tmp_path)[0]
    assert {a.id for a in both} == {
        f"{tmp_path.name}/cnn/2024-01-01",
        f"{tmp_path.name}/bbc/2024-01-01",
        f"{tmp_path.name}/bbc/world/2024-01-02",
    }


def test_a_file_named_twice_is_read_once(tmp_path):
    f = write(tmp_path / "cnn" / "a.md", "Text.\n")
    arts, errs = _read(tmp_path / "cnn", f, tmp_path / "cnn")
    assert errs == [] and [a.id for a in arts] == ["cnn/a"]


def test_duplicate_id_names_both_places(tmp_path):
    lines = write(
        tmp_path / "feed" / "a.jsonl",
        json.dumps({"id": "x", "text": "First."})
        + "\n"
        + json.dumps({"id": "y", "text": "Other."})
        + "\n"
        + json.dumps({"id": "x", "text": "Second."})
        + "\n",
    )
    md = write(tmp_path / "feed" / "b.md", "---\nid: x\n---\nThird.\n")
    for _ in range(2):  # the same answer every time
        arts, errs = _read(tmp_path / "feed")
        assert [(a.id, a.text.strip()) for a in arts] == [("x", "First."), ("y", "Other.")]
        assert [(e.path, e.line) for e in errs] == [(str(lines), 3), (str(md), None)]
        for e in errs:
            assert "duplicate" in e.reason and f"{lines}:1" in e.reason


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
