"""The interface must read in French: every exported term has a French translation
that keeps its placeholders."""

import pathlib
import re

import polib
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
ADDONS = sorted(p.parent for p in ROOT.glob("*/__manifest__.py"))
PLACEHOLDER = re.compile(r"%\(\w+\)s|%%|%[sd]")


@pytest.mark.parametrize("addon", ADDONS, ids=lambda p: p.name)
def test_every_term_is_translated_to_french(addon):
    pot = polib.pofile(str(addon / "i18n" / f"{addon.name}.pot"))
    french = {e.msgid: e.msgstr for e in polib.pofile(str(addon / "i18n" / "fr.po"))}
    untranslated = [e.msgid for e in pot if not french.get(e.msgid)]
    assert not untranslated, f"{len(untranslated)} terms without French: {untranslated}"


@pytest.mark.parametrize("addon", ADDONS, ids=lambda p: p.name)
def test_french_keeps_the_placeholders(addon):
    for entry in polib.pofile(str(addon / "i18n" / "fr.po")):
        if entry.msgstr:
            assert sorted(PLACEHOLDER.findall(entry.msgid)) == sorted(
                PLACEHOLDER.findall(entry.msgstr)
            ), entry.msgid
