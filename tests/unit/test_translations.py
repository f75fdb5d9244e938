"""The Simplified Chinese catalogue is complete, matches the code, and is compiled: a string added to a template
or to the code without its translation fails here, as does a .mo file older than its .po."""

import gettext
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command

from tools.stack import ROOT

CATALOGUE = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
# As in the README: line numbers are left out, so moving code does not change the catalogue.
MAKEMESSAGES = {
    "locale": ["zh_Hans"],
    "no_location": True,
    "no_obsolete": True,
    "extensions": ["html", "txt", "py", "jinja"],
    "ignore_patterns": [".venv/*", "tests/*", "var/*", ".tools/*", "static/*", "docs/*"],
    "verbosity": 0,
}


@pytest.fixture(autouse=True)
def _gettext_tools() -> None:
    if shutil.which("msgfmt") is None:
        pytest.fail("GNU gettext is missing: `tools/setup --test` installs it (apt-get install gettext)")


def test_every_string_is_translated():
    result = subprocess.run(
        ["msgfmt", "--check-format", "--statistics", "-o", "/dev/null", str(CATALOGUE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "untranslated" not in result.stderr and "fuzzy" not in result.stderr, result.stderr
    assert " translated messages." in result.stderr


def test_makemessages_would_change_nothing(monkeypatch):
    before = CATALOGUE.read_bytes()
    monkeypatch.chdir(ROOT)
    try:
        call_command("makemessages", **MAKEMESSAGES)
        after = CATALOGUE.read_bytes()
    finally:
        CATALOGUE.write_bytes(before)
    assert after == before, "strings were added or changed: run `make messages`, translate, and commit"


def test_the_compiled_catalogue_is_the_current_one(tmp_path: Path):
    compiled = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "-o", str(compiled), str(CATALOGUE)], check=True)
    with compiled.open("rb") as fresh, CATALOGUE.with_suffix(".mo").open("rb") as committed:
        assert gettext.GNUTranslations(committed)._catalog == gettext.GNUTranslations(fresh)._catalog, (
            "run `make messages` to compile the catalogue"
        )
