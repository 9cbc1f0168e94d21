"""Escaping of article and model text in the UI's HTML (no browser needed)."""

from rag.engine import Answer
from rag.grounding import Citation
from tests.conftest import write
from ui.app import keep_uploads
from ui.render import render_answer, safe


def test_safe_text_cannot_become_markup_or_markdown():
    out = safe("<script>x</script> [a](javascript:1) ![i](http://e/x.png) *b* `c`\r\rwww.e.x")
    for raw in ("<script", "](", "![", "*b*", "`c`", "\r", "\n"):
        assert raw not in out
    assert "&lt;script&gt;" in out or "&#60;script&#62;" in out


def test_only_http_links_and_quoted_attributes():
    c = Citation(1, "d", 'T"itle', "s", 'javascript:alert(1)"', "2024-01-01", "t", 0, 1, 0.9)
    html = render_answer(Answer("q", "A [1]", [c], False))
    assert "javascript:" not in html and 'T"itle' not in html
    c2 = Citation(1, "d", "T", "s", 'https://e.x/"onmouseover="x', "", "t", 0, 1, 0.9)
    html2 = render_answer(Answer("q", "A [1]", [c2], False))
    assert '"onmouseover="' not in html2


def test_uploads_with_the_same_name_are_kept_apart(tmp_path):
    a = write(tmp_path / "h1" / "notes.md", "First article.\n")
    b = write(tmp_path / "h2" / "notes.md", "Second article.\n")
    kept = keep_uploads([str(a), str(b)], tmp_path / "uploads")
    assert len({p.name for p in kept}) == 2 and all(p.exists() for p in kept)


def test_right_to_left_overrides_cannot_reverse_shown_text():
    out = safe("Price: \u202e05 sorue\u202c and \u2067isolated\u2069")
    assert not any(c in out for c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    assert "05 sorue" in out


def test_repeated_wrong_logins_are_slowed_down_and_the_right_one_still_works():
    import time

    from ui.app import LoginThrottle

    class Fast(LoginThrottle):
        BASE_DELAY = 0.05

    gate = Fast("editor", "s3cret")
    t = time.perf_counter()
    assert not any(gate("editor", f"guess{i}") for i in range(Fast.FREE_FAILURES))
    free = time.perf_counter() - t
    t = time.perf_counter()
    assert not any(gate("editor", f"guess{i}") for i in range(5))
    slowed = time.perf_counter() - t
    # 0.05 * (1 + 2 + 4 + 8 + 16) seconds of waiting, whatever the machine's speed.
    assert slowed >= 0.05 * 31 and free < slowed
    assert gate("editor", "s3cret") and gate("editor", "s3cret")
    assert not gate("editor", "S3cret") and not gate("someone", "s3cret")


def test_the_corroboration_line_and_the_sources_that_differ_are_shown_escaped():
    from rag.answer_span import ShortAnswer
    from rag.corroborate import Conflict, Corroboration

    cites = [
        Citation(1, "a", "T", "velmar-post.example", "", "", "Ilka Brand won.", 0, 15, 0.9),
        Citation(2, "b", "T", "orlen.example", "", "", "Ilka Brand won.", 0, 15, 0.0),
        Citation(3, "c", "T", "x.example", "", "", "<b>Ola</b> won.", 0, 15, 0.0),
    ]
    text = (
        "Ilka Brand [1][2] (2 sources)\nSources differ: Ilka Brand [1], <b>Ola</b> [3]\n\n"
        "Ilka Brand won. [1]"
    )
    answer = Answer(
        "Who won?",
        text,
        cites,
        False,
        short_answer=ShortAnswer("Ilka Brand", 1, "a", 0, 10, "person", 1.0, "combined"),
        corroboration=Corroboration(2, [1, 2]),
        conflicts=[Conflict("<b>Ola</b>", 3, "x.example")],
    )
    html = render_answer(answer)
    short = html.split('<div class="short-answer">', 1)[1].split("</div>", 1)[0]
    assert "&#40;2 sources&#41;" in short and "differ" not in short
    assert short.count('class="cite"') == 2
    differ = html.split('<div class="sources-differ">', 1)[1].split("</div>", 1)[0]
    assert differ.startswith("Sources differ: Ilka Brand")
    assert "<b>Ola" not in html and "&#60;b&#62;Ola" in differ
