"""The README's settings table must say what rag/config.py does: every documented default is
the real one, and every setting is documented."""

import re

from rag.config import Settings
from tests.conftest import ROOT

ROW = re.compile(r"^\| (`RAG_[A-Z_]+`(?: / `RAG_[A-Z_]+`)*) \| ([^|]+) \|", re.MULTILINE)
NOT_SHOWN = {"seed", "judge_api_key", "judge_base_url", "judge_model"}  # eval section covers them


def documented() -> dict[str, str]:
    out = {}
    for names, defaults in ROW.findall((ROOT / "README.md").read_text()):
        keys = [n.strip("`")[4:].lower() for n in names.split(" / ")]
        values = [v.strip() for v in defaults.split(" / ")]
        if len(values) != len(keys):
            values = [""] * len(keys)
        for key, value in zip(keys, values, strict=True):
            out[key] = value
    return out


def test_every_setting_is_documented():
    missing = set(Settings.model_fields) - set(documented()) - NOT_SHOWN
    assert not missing, f"settings not in the README's table: {sorted(missing)}"


def test_documented_defaults_are_the_real_ones():
    wrong = []
    for key, shown in documented().items():
        field = Settings.model_fields.get(key)
        assert field is not None, f"the README documents RAG_{key.upper()}, which does not exist"
        literal = re.fullmatch(r"`([^`]*)`(?: \(.*\))?", shown)
        if field.default_factory is not None or literal is None:
            continue  # a path or a description, not a literal value
        value = literal.group(1)
        real = field.default
        if real in ("", None):
            continue  # unset: the README names what the backend then uses
        if isinstance(real, bool):
            ok = value == str(real).lower()
        elif isinstance(real, int | float) and not isinstance(real, bool):
            ok = float(value) == float(real)
        else:
            ok = value == str(real)
        if not ok:
            wrong.append(f"RAG_{key.upper()}: README says {value!r}, config.py {real!r}")
    assert not wrong, wrong
