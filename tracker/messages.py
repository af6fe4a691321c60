"""Text a person reads that the server makes: a catalogue msgid and its named parameters.

A `Message` (a fragment: "must not be empty") or a `UserError` (an error: "features[3]:
properties.name must not be empty") keeps its msgid template, e.g.
`"%(label)s: %(path)s must be a position [lon, lat]"`, and its parameters apart, and
renders them late:

- `str()` is the English text, `template % params`: logs, tests and English clients read it;
- `localized()` is the text in the language of the current request (Flask-Babel), or in
  the language of the translations handed to it (the CLI), English outside a request.

A parameter that is itself a `Message` or a `UserError` is rendered in the same language,
recursively, so a rule fragment ("must not be empty") can be filled into a sentence
("%(label)s: properties.name %(problem)s"). Any other parameter (a path, a name, a number)
is filled in as it is: paths and names are never translated. `joined()` strings fragments
together. Templates are literal strings at the call site, so `pybabel extract` (and
tests/unit/test_translations.py) find them with the keywords `Message`, `UserError` and
the error classes built on it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from functools import lru_cache
from gettext import NullTranslations
from pathlib import Path
from typing import Any

import flask_babel
from babel import Locale
from babel.support import Translations
from flask import has_request_context

TRANSLATIONS_DIR = Path(__file__).with_name("translations")
ENGLISH = NullTranslations()
# The variables that choose the language of messages, strongest first (POSIX).
LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")


class Message:
    """A translatable fragment: a msgid template with `%(name)s` parameters, rendered late."""

    __slots__ = ("params", "template")

    def __init__(self, template: str, /, **params: Any) -> None:
        """Keep the msgid template and the values of its parameters."""
        self.template = template
        self.params = params

    def __str__(self) -> str:
        """Return the English text."""
        return render(self.template, self.params, ENGLISH)

    def __repr__(self) -> str:
        """Return the constructor call that makes this message."""
        params = "".join(f", {name}={value!r}" for name, value in self.params.items())
        return f"Message({self.template!r}{params})"

    def localized(self, translations: NullTranslations | None = None) -> str:
        """Return the text in the given translations' language, else the request's."""
        return render(self.template, self.params, translations)


class UserError(ValueError):
    """An error a person reads: `str()` is English, `localized()` in the reader's language.

    Raise it with a literal msgid template and named parameters:
    `UserError("%(label)s: %(path)s must be a position [lon, lat]", label=..., path=...)`.
    """

    def __init__(self, template: str, /, **params: Any) -> None:
        """Keep the msgid template and its parameters; the exception's args are English."""
        self.template = template
        self.params = params
        super().__init__(render(template, params, ENGLISH))

    def __str__(self) -> str:
        """Return the English text."""
        return render(self.template, self.params, ENGLISH)

    def localized(self, translations: NullTranslations | None = None) -> str:
        """Return the text in the given translations' language, else the request's."""
        return render(self.template, self.params, translations)


def joined(parts: Iterable[Message | UserError | str], separator: str = "; ") -> Message:
    """Return fragments shown one after another, each rendered in the reader's language."""
    values = {f"part{i}": part for i, part in enumerate(parts)}
    # The template is not a catalogue msgid: gettext hands it back as it is.
    return Message(separator.join(f"%({name})s" for name in values), **values)


def render(
    template: str, params: Mapping[str, Any], translations: NullTranslations | None = None
) -> str:
    """Return a template translated and filled with its parameters.

    Args:
        template: the msgid, with `%(name)s` placeholders.
        params: the placeholders' values; a Message or a UserError is rendered in the same
            language.
        translations: the catalogue to use; None means the current request's locale
            (Flask-Babel), or English outside a request.

    Returns:
        The text a person reads.
    """
    if translations is None:
        translations = flask_babel.get_translations() if has_request_context() else ENGLISH
    # gettext("") would answer the catalogue's header.
    text = translations.gettext(template) if template else ""
    if not params:
        return text
    return text % {name: _rendered(value, translations) for name, value in params.items()}


def _rendered(value: Any, translations: NullTranslations) -> Any:
    """Return a parameter ready to fill in: fragments rendered, other values as they are."""
    if isinstance(value, Message | UserError):
        return value.localized(translations)
    return value


@lru_cache
def catalogue(locale: str) -> NullTranslations:
    """Return the translations of a locale ("zh_CN"), English when there are none."""
    return Translations.load(TRANSLATIONS_DIR, [Locale.parse(locale)])


def environment_translations(environ: Mapping[str, str] | None = None) -> NullTranslations:
    """Return Chinese when the environment's locale (LC_ALL, LC_MESSAGES, LANG) is zh, else English.

    Args:
        environ: the environment to read; None means os.environ.

    Returns:
        The translations for an operator's terminal.
    """
    environ = os.environ if environ is None else environ
    for name in LOCALE_VARIABLES:
        value = environ.get(name)
        if value:
            return catalogue("zh_CN") if value.lower().startswith("zh") else ENGLISH
    return ENGLISH
