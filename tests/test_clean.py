from rag.clean import clean_text
from tests.conftest import CORPUS


def test_drops_comment_form_footer_of_seed_article():
    raw = (CORPUS / "003_ed5bf04dcd149c8e.md").read_text()
    assert "Leave a Reply" in raw
    cleaned = clean_text(raw)
    assert "Leave a Reply" not in cleaned
    assert "Required fields are marked" not in cleaned
    assert cleaned.endswith("shifting global power dynamics in 2026.")


def test_keeps_paragraphs_and_normalises_whitespace_and_unicode():
    raw = "First\u00a0 \tparagraph.\r\n\r\n\r\n\r\n  Second \u200bone  ﬁne.\nSame para."
    assert clean_text(raw) == "First paragraph.\n\nSecond one fine.\nSame para."


def test_junk_lines_removed_but_article_text_kept():
    raw = "Advertisement\nReal sentence one.\n\nShare this:\nReal sentence two."
    assert clean_text(raw) == "Real sentence one.\n\nReal sentence two."


def test_footer_words_early_in_article_do_not_truncate():
    body = "\n\n".join(f"Paragraph {i} of the story." for i in range(9))
    raw = "Leave a reply to the minister, protesters said.\n\n" + body
    assert clean_text(raw).startswith("Leave a reply to the minister")
