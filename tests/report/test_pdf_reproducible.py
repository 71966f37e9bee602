"""The deck's PDF is reproducible: chromium's time stamps (and an /ID, if any) are rewritten
to fixed values of the same length, so two exports of one deck are byte-identical."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from generator.report.pdf import PDF_DATE, count_pdf_pages, export_pdf, normalise_pdf

# The document information dictionary and trailer as chromium (Skia/PDF) writes them.
_PDF = (b"%PDF-1.4\n1 0 obj\n<</Creator (Chromium)\n/Producer (Skia/PDF m156)\n"
        b"/CreationDate (D:20261123035548+01'00')\n/ModDate (D:20261123035549-05'30')>>\nendobj\n"
        b"trailer\n<</Size 2 /Root 1 0 R /ID [<0123456789abcdef0123456789abcdef> "
        b"<fedcba9876543210fedcba9876543210>]>>\nstartxref\n9\n%%EOF\n")


def test_time_stamps_become_fixed_and_keep_their_length():
    out = normalise_pdf(_PDF)
    assert len(out) == len(_PDF), "offsets in the xref table must stay valid"
    assert out.count(f"(D:{PDF_DATE}+00'00')".encode()) == 2
    assert b"2026" not in out


def test_runs_that_differ_only_in_time_and_id_give_the_same_bytes():
    later = (_PDF.replace(b"20261123035548+01'00'", b"20270101235959-08'00'")
             .replace(b"0123456789abcdef", b"ffffffffffffffff"))
    assert later != _PDF and normalise_pdf(later) == normalise_pdf(_PDF)
    assert normalise_pdf(normalise_pdf(_PDF)) == normalise_pdf(_PDF), "normalising twice changes nothing"


def test_the_id_is_a_hash_of_the_content():
    ids = re.findall(rb"<([0-9a-f]{32})>", normalise_pdf(_PDF))
    assert len(ids) == 2 and ids[0] == ids[1]
    changed = normalise_pdf(_PDF.replace(b"Chromium", b"Chromiun"))
    assert re.findall(rb"<([0-9a-f]{32})>", changed)[0] != ids[0], "another content, another /ID"


def test_a_wrong_date_is_refused():
    with pytest.raises(ValueError, match="14 digits"):
        normalise_pdf(_PDF, date="2026-01-01")


@pytest.mark.browser
def test_two_exports_of_the_deck_are_byte_identical(deck_dir, tmp_path):
    if shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is not installed (`apt-get install chromium`)")
    deck = Path(deck_dir) / "index.html"
    first = export_pdf(deck, tmp_path / "first.pdf").read_bytes()
    second = export_pdf(deck, tmp_path / "second.pdf").read_bytes()
    assert first == second, "two exports of the same deck must be byte-identical"
    assert b"/CreationDate (D:" + PDF_DATE.encode() in first
    slides = deck.read_text(encoding="utf-8").count("<section")
    assert count_pdf_pages(tmp_path / "first.pdf") == slides
