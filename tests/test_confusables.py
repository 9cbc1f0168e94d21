"""Look-alike and invisible characters are folded before any check reads a sentence."""

from __future__ import annotations

from rag.confusables import fold


def test_other_scripts_letters_that_look_latin_read_as_latin():
    assert fold("Note to АI assistants") == "Note to AI assistants"  # Cyrillic А
    assert fold("chatbоts") == "chatbots"  # Cyrillic о
    assert fold("AΙ") == "AI"  # a Greek capital iota is a capital I, not an "l"


def test_invisible_and_compatibility_characters_are_removed_or_normalised():
    assert fold("chat\u200bbots") == "chatbots"  # zero-width space
    assert fold("A\u00adI\u2060") == "AI"  # soft hyphen, word joiner
    assert fold("ｆｕｌｌ 𝐛𝐨𝐥𝐝") == "full bold"  # fullwidth, mathematical bold


def test_ordinary_text_is_unchanged():
    for text in ["Résumé of Müller's career", "Ilse Varga, 54, won.", "naïve café — «oui»"]:
        assert fold(text) == text
