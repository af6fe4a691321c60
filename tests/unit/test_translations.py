"""The zh-CN catalogue: complete, not fuzzy, holding every msgid of the code and templates.

The catalogue is kept by hand (see tracker/translations/babel.cfg), so nothing else notices
a new English string that has no Chinese yet: these tests do.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from tracker.messages import (
    ENGLISH,
    Message,
    UserError,
    catalogue,
    environment_translations,
    joined,
)

ROOT = Path(__file__).resolve().parents[2]
TRACKER = ROOT / "tracker"
TEMPLATES = TRACKER / "web" / "templates"
PO_PATH = TRACKER / "translations" / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"
POT_PATH = TRACKER / "translations" / "messages.pot"

# Every call that takes a msgid: Flask-Babel's functions, and the classes whose first
# argument is a template (InputError's second: its first names the CLI argument).
KEYWORDS = {
    "_": None,
    "_l": None,
    "gettext": None,
    "lazy_gettext": None,
    "ngettext": (1, 2),
    "Message": None,
    "UserError": None,
    "BoundaryImportError": None,
    "DispatchError": None,
    "AdminError": None,
    "AdminForbidden": None,
    "AdminNotFound": None,
    "AdminConflict": None,
    "RosterFileError": None,
    "InputError": (2,),
}
# `%(name)s`, `%(byte)02x`, and the `{n}` of the strings the pages' scripts format.
PLACEHOLDER = re.compile(r"%\(\w+\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrs]|\{\w+\}")

try:
    from jinja2.ext import babel_extract  # noqa: F401

    TEMPLATE_METHOD: str | None = "jinja2.ext:babel_extract"
except ImportError:  # pragma: no cover - Jinja2 always ships it today
    # Without Jinja2's extractor the templates' strings go unchecked here.
    TEMPLATE_METHOD = None


def read_catalogue(path: Path):
    """Return the parsed catalogue at path."""
    with path.open("rb") as file:
        return read_po(file)


def msgids(message) -> list[str]:
    """Return the msgid of a catalogue entry, and its plural form if it has one."""
    return list(message.id) if isinstance(message.id, tuple | list) else [message.id]


def msgstrs(message) -> list[str]:
    """Return the translations of a catalogue entry, every plural form included."""
    return list(message.string) if isinstance(message.string, tuple | list) else [message.string]


def extracted() -> dict[str, str]:
    """Return each msgid found in tracker/ (Python and templates) with where it is."""
    found: dict[str, str] = {}
    sources = [(TRACKER, [("**.py", "python")])]
    if TEMPLATE_METHOD is not None:
        sources.append((TEMPLATES, [("**.html", TEMPLATE_METHOD), ("**.js", TEMPLATE_METHOD)]))
    for folder, method_map in sources:
        options = {"**.html": {"extensions": "jinja2.ext.i18n"}}
        for filename, lineno, message, _comments, _context in extract_from_dir(
            str(folder), method_map, options_map=options, keywords=KEYWORDS
        ):
            for msgid in message if isinstance(message, tuple) else (message,):
                if msgid:
                    found.setdefault(msgid, f"{folder.relative_to(ROOT)}/{filename}:{lineno}")
    return found


@pytest.fixture(scope="module")
def po():
    """Return the zh-CN catalogue."""
    return read_catalogue(PO_PATH)


def entries(po) -> list:
    """Return the catalogue's messages without its header."""
    return [message for message in po if message.id]


def test_every_entry_is_translated_and_not_fuzzy(po) -> None:
    """Fail on any zh-CN entry with an empty translation or marked fuzzy."""
    empty = [msgids(m)[0] for m in entries(po) if not all(msgstrs(m))]
    fuzzy = [msgids(m)[0] for m in entries(po) if m.fuzzy]
    assert not empty, f"entries without a translation: {empty}"
    assert not fuzzy, f"fuzzy entries: {fuzzy}"


def test_every_msgid_in_the_code_is_translated(po) -> None:
    """Fail listing each msgid of tracker/ (code and templates) missing from the catalogue."""
    translated = {msgid for m in entries(po) for msgid in msgids(m)}
    missing = {msgid: where for msgid, where in extracted().items() if msgid not in translated}
    listing = "\n".join(f"  {where}: {msgid!r}" for msgid, where in sorted(missing.items()))
    assert not missing, f"{len(missing)} msgids missing from {PO_PATH.name}:\n{listing}"


def test_template_holds_the_same_msgids(po) -> None:
    """Keep messages.pot and the zh-CN catalogue listing the same msgids."""
    template = {msgid for m in entries(read_catalogue(POT_PATH)) for msgid in msgids(m)}
    translated = {msgid for m in entries(po) for msgid in msgids(m)}
    assert sorted(translated - template) == [], "in the .po but not the .pot"
    assert sorted(template - translated) == [], "in the .pot but not the .po"


def test_placeholders_match(po) -> None:
    """Fail on a translation whose placeholders differ from its msgid's."""
    wrong = []
    for message in entries(po):
        expected = sorted(PLACEHOLDER.findall(msgids(message)[0]))
        for msgstr in msgstrs(message):
            if sorted(PLACEHOLDER.findall(msgstr)) != expected:
                wrong.append((msgids(message)[0], msgstr))
    assert not wrong, "placeholders differ:\n" + "\n".join(f"  {a!r} -> {b!r}" for a, b in wrong)


def test_user_error_str_is_the_english_text() -> None:
    """Render str() as template % params, with fragments in English."""
    problem = Message(
        "must be at most %(max_chars)s characters, got %(count)s", max_chars=3, count=5
    )
    exc = UserError("features[%(index)s]: properties.name %(problem)s", index=2, problem=problem)
    assert str(exc) == "features[2]: properties.name must be at most 3 characters, got 5"
    assert exc.args == (str(exc),)
    assert exc.localized() == str(exc)  # outside a request: English


def test_user_error_renders_in_given_translations() -> None:
    """Translate the template and each fragment, leaving paths and names as they are."""
    zh = catalogue("zh_CN")
    exc = UserError(
        "features[%(index)s]: properties.name %(problem)s",
        index=3,
        problem=Message("must not be empty"),
    )
    assert exc.localized(zh) == "features[3]：properties.name 不能为空"
    assert exc.localized(ENGLISH) == str(exc)


def test_unknown_template_and_literal_percent() -> None:
    """Hand back a template missing from the catalogue; format only when there are params."""
    zh = catalogue("zh_CN")
    assert Message("not in any catalogue, 100%").localized(zh) == "not in any catalogue, 100%"
    assert str(Message("%(a)r at %(b)s", a="x", b=[1.5, 2])) == "'x' at [1.5, 2]"


def test_joined_renders_each_part() -> None:
    """Join fragments with "; ", each in the reader's language, and nothing for none."""
    parts = [Message("must not be empty"), "as it is"]
    assert str(joined(parts)) == "must not be empty; as it is"
    assert joined(parts).localized(catalogue("zh_CN")) == "不能为空; as it is"
    assert str(joined([])) == ""


@pytest.mark.parametrize(
    ("environ", "chinese"),
    [
        ({"LANG": "zh_CN.UTF-8"}, True),
        ({"LANG": "zh_TW.UTF-8"}, True),
        ({"LANG": "en_US.UTF-8", "LC_MESSAGES": "zh_CN.UTF-8"}, True),
        ({"LANG": "zh_CN.UTF-8", "LC_ALL": "C"}, False),
        ({"LANG": "zh_CN.UTF-8", "LC_ALL": ""}, True),  # empty means unset
        ({"LANG": "C.UTF-8"}, False),
        ({}, False),
    ],
)
def test_environment_translations(environ, chinese) -> None:
    """Choose Chinese from the first set of LC_ALL, LC_MESSAGES, LANG that starts with zh."""
    text = Message("must not be empty").localized(environment_translations(environ))
    assert text == ("不能为空" if chinese else "must not be empty")
