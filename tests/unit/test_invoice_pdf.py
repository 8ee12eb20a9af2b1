"""Invoice PDFs, read back with a PDF library: what a customer sees is what the invoice says."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pytest
from PIL import Image
from pypdf import PdfReader

from fieldbill.documents import invoice_pdf, model
from fieldbill.documents.model import DocumentLine, InvoiceDocument, Logo


def line(description: str, qty: str, price: str, taxable: bool = False) -> DocumentLine:
    amount = (Decimal(qty) * Decimal(price)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return DocumentLine(description, Decimal(qty), Decimal(price), amount, taxable)


def document(number: str = "INV-1001", lines: int = 3, **kw: object) -> InvoiceDocument:
    rows = [line(f"Weekly pool service visit {number}/{i}", "1.5", f"{70 + i}.25") for i in range(lines)]
    subtotal = sum((r.amount for r in rows), Decimal("0"))
    tax = Decimal("12.34")
    total = subtotal + tax
    values: dict[str, object] = {
        "tenant_name": "Blue Lagoon Pools",
        "customer_name": "Ocean View HOA",
        "number": number,
        "issue_date": date(2026, 11, 30),
        "due_date": date(2026, 12, 30),
        "status": "open",
        "lines": rows,
        "subtotal": subtotal,
        "tax": tax,
        "total": total,
        "amount_paid": Decimal("50"),
        "balance": total - Decimal("50"),
        "billing_address": ("12 Harbour Road", "Seaside, CA 93955"),
        "billing_email": "accounts@oceanview.example",
    }
    return InvoiceDocument(**(values | kw))  # type: ignore[arg-type]


def pages(pdf: bytes) -> list[str]:
    reader = PdfReader(io.BytesIO(pdf))
    # Extracted text breaks lines where the layout does: compare with single spaces.
    return [" ".join(page.extract_text().split()) for page in reader.pages]


def test_one_invoice_shows_number_lines_totals_balance_and_due_date():
    # Given an invoice with three lines, tax and a part payment
    doc = document(lines=3)

    # When it is rendered
    pdf = invoice_pdf.render_invoice(doc)

    # Then it is a PDF whose text shows what the invoice says, money with two decimals
    assert pdf.startswith(b"%PDF-")
    text = " ".join(pages(pdf))
    assert "INV-1001" in text
    assert "Blue Lagoon Pools" in text and "Ocean View HOA" in text
    assert "12 Harbour Road" in text and "accounts@oceanview.example" in text
    for row in doc.lines:
        assert row.description in text
        assert f"{row.amount:.2f}" in text
    # three lines 105.38 + 106.88 + 108.38 = 320.64, + 12.34 tax, less 50.00 paid
    assert "Subtotal 320.64 Tax 12.34 Total USD 332.98" in text
    assert "Amount paid 50.00 Balance due USD 282.98" in text
    assert "DUE DATE 2026-12-30" in text


def test_money_is_printed_with_two_decimals_from_decimal_never_float():
    assert model.money(Decimal("1234.5")) == "1,234.50"
    assert model.money(Decimal("0")) == "0.00"
    # Half-up at the cent, as the domain's money rules round (float would make this 0.00 or 0.01 by luck).
    assert model.money(Decimal("0.005")) == "0.01"
    assert model.money(Decimal("2.675")) == "2.68"
    with pytest.raises(TypeError):
        model.money(2.675)  # type: ignore[arg-type]


def test_quantity_prints_as_entered_without_trailing_zeros():
    assert model.quantity(Decimal("1.500000")) == "1.5"
    assert model.quantity(Decimal("10.000000")) == "10"
    assert model.quantity(Decimal("0.016667")) == "0.016667"


def test_user_text_is_escaped_not_read_as_markup():
    # Given a description that looks like markup
    doc = replace(document(), lines=[line("Filter <b>cartridge</b> & O-ring", "2", "19.99")])

    # Then the PDF shows it literally
    text = " ".join(pages(invoice_pdf.render_invoice(doc)))
    assert "Filter <b>cartridge</b> & O-ring" in text


def test_no_due_date_reads_on_receipt_and_taxable_lines_are_marked():
    doc = replace(document(lines=1, due_date=None), lines=[line("Chlorine tablets", "3", "12.00", True)])
    text = " ".join(pages(invoice_pdf.render_invoice(doc)))
    assert "on receipt" in text
    assert "Chlorine tablets 3 12.00 36.00 T" in text
    assert "T: taxable line." in text


def test_a_logo_is_drawn_as_an_image():
    # Given a tenant logo (a real PNG)
    picture = io.BytesIO()
    Image.new("RGB", (120, 40), (43, 76, 126)).save(picture, format="PNG")
    doc = document(logo=Logo(picture.getvalue(), "image/png"))

    # Then the first page carries one image, and the text is still there
    pdf = invoice_pdf.render_invoice(doc)
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages[0].images) == 1
    assert "INV-1001" in reader.pages[0].extract_text()
    assert len(PdfReader(io.BytesIO(invoice_pdf.render_invoice(document()))).pages[0].images) == 0


def test_a_logo_of_an_unknown_type_is_refused():
    with pytest.raises(ValueError):
        Logo(b"<svg/>", "image/svg+xml")


def test_many_holds_every_invoice_each_from_a_new_page():
    # Given three invoices, the middle one long enough to need two pages
    docs = [document("INV-2001", 2), document("INV-2002", 60), document("INV-2003", 1)]

    # When they are printed together
    text = pages(invoice_pdf.render_many(docs))

    # Then every invoice is there, in order, each starting at the top of its own page
    starts = [i for i, page in enumerate(text) if "INVOICE NUMBER" in page]
    numbers = [re.search(r"INVOICE NUMBER (\S+)", text[i]).group(1) for i in starts]  # type: ignore[union-attr]
    assert numbers == ["INV-2001", "INV-2002", "INV-2003"]
    assert len(text) == 4  # the 60-line invoice runs onto a second page
    assert starts == [0, 1, 3]
    # no page holds two invoices' lines
    for page in text:
        assert len(set(re.findall(r"visit (INV-\d+)/", page))) <= 1
    for doc in docs:
        for row in doc.lines:
            assert any(row.description in page for page in text)


def test_many_past_one_chunk_joins_the_chunks_in_order(monkeypatch: pytest.MonkeyPatch):
    # Given more invoices than one layout pass takes (a small chunk keeps the test quick)
    monkeypatch.setattr(invoice_pdf, "CHUNK", 2)
    docs = [document(f"INV-30{i:02d}", 1) for i in range(5)]

    # Then the joined PDF has one page per invoice, in the order asked
    text = pages(invoice_pdf.render_many(docs))
    found = [re.search(r"INVOICE NUMBER (\S+)", page).group(1) for page in text]  # type: ignore[union-attr]
    assert found == [d.number for d in docs]


def test_many_of_nothing_is_refused():
    with pytest.raises(ValueError):
        invoice_pdf.render_many([])


# ---------------------------------------------------------------------------- (issue 16)
def test_a_period_invoice_shows_the_balance_brought_forward_beside_its_own_total_not_in_it():
    # Given a $0 period invoice of an account that owes 40.00 from earlier invoices
    doc = document(
        lines=0, tax=Decimal("0"), subtotal=Decimal("0"), total=Decimal("0"), amount_paid=Decimal("0"),
        balance=Decimal("0"), balance_forward=Decimal("40"),
    )  # fmt: skip
    # When it is rendered
    (text,) = pages(invoice_pdf.render_invoice(doc))
    # Then the customer reads the invoice's own total and, apart, what the account owes in all
    assert "Total USD 0.00" in text and "Balance due USD 0.00" in text
    assert "Previous balance (earlier invoices, not in this total) 40.00" in text
    assert "Account balance due USD 40.00" in text


def test_an_invoice_without_a_balance_brought_forward_shows_no_account_lines():
    (text,) = pages(invoice_pdf.render_invoice(document(lines=1)))
    assert "Previous balance" not in text and "Account balance" not in text
