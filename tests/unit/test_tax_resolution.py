"""Tax per contact and per line (issue 15, domain/tax.resolve): line > product > contact > tenant
default, each line's share of the tax, edits, and what QuickBooks is sent."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldbill.domain import invoice_edits, tax
from fieldbill.domain import model as dm
from fieldbill.domain.errors import ValidationError
from fieldbill.quickbooks import mapping

CODES = {
    "ca": tax.TaxCode("ca", "California", Decimal("7.25")),
    "nyc": tax.TaxCode("nyc", "New York City", Decimal("8.875")),
    "zero": tax.TaxCode("zero", "Zero rated", Decimal("0")),
    "old": tax.TaxCode("old", "Retired", Decimal("5"), active=False),
}
C = tax.TaxChoice
NONE = tax.NO_CHOICE


def rules(**kw: object) -> tax.TaxRules:
    base: dict[str, object] = {"codes": CODES, "default_code": "ca", "taxable_kinds": ("goods",)}
    return tax.TaxRules(**(base | kw))  # type: ignore[arg-type]


def line(
    no: int, amount: str, kind: str = "goods", product: str = "p", taxable: bool = False
) -> dm.InvoiceLine:
    return dm.InvoiceLine(
        line_no=no,
        item_id=None,
        line_kind=dm.LineKind(kind),
        work_date=None,
        description="x",
        product_id=product,
        product_name=product,
        unit=None,
        quantity=Decimal("1"),
        unit_price=Decimal(amount),
        amount=Decimal(amount),
        taxable=taxable,
    )


def invoice(*lines: dm.InvoiceLine, contact: str = "c1") -> dm.Invoice:
    subtotal = sum((ln.amount for ln in lines), Decimal("0.00"))
    return dm.Invoice(
        id="i1",
        tenant_id="t",
        run_id="r",
        contact_id=contact,
        grouping=dm.GroupingMode.PER_CONTACT,
        group_key="c1",
        issue_date=date(2026, 11, 1),
        due_date=date(2026, 12, 1),
        lines=tuple(lines),
        subtotal=subtotal,
        total=subtotal,
    )


# ---------------------------------------------------------------------------- the order, level by level
@pytest.mark.parametrize(
    ("line_", "product", "contact", "kind", "expected"),
    [
        # the tenant default: a kind the company taxes, at the default code
        (NONE, NONE, NONE, "goods", (True, "ca", "7.25", "tenant")),
        (NONE, NONE, NONE, "task_entry", (False, None, None, "tenant")),
        # the contact: its own code replaces the default; exempt: nothing is taxed
        (NONE, NONE, C(code_id="nyc"), "goods", (True, "nyc", "8.875", "contact")),
        (NONE, NONE, C(code_id="nyc"), "task_entry", (False, None, None, "tenant")),
        (NONE, NONE, C(taxable=False), "goods", (False, None, None, "contact")),
        # the product: non-taxable beats the contact's code; marked taxable taxes a labour line,
        # but not for an exempt contact (QuickBooks taxes a line only if item and customer are)
        (NONE, C(taxable=False), C(code_id="nyc"), "goods", (False, None, None, "product")),
        (NONE, C(taxable=True), NONE, "task_entry", (True, "ca", "7.25", "tenant")),
        (NONE, C(taxable=True), C(taxable=False), "goods", (False, None, None, "contact")),
        (NONE, C(code_id="nyc"), NONE, "task_entry", (True, "nyc", "8.875", "product")),
        # the line: its own code beats everything, an exempt contact included; taxable=false too
        (C(code_id="nyc"), C(taxable=False), C(taxable=False), "task_entry", (True, "nyc", "8.875", "line")),
        (C(taxable=False), C(taxable=True), C(code_id="nyc"), "goods", (False, None, None, "line")),
        (C(taxable=True), NONE, C(taxable=False), "goods", (False, None, None, "contact")),
    ],
)
def test_the_first_level_that_decides_wins(line_, product, contact, kind, expected) -> None:
    got = tax.resolve(kind, line_, product, contact, rules())
    rate = None if got.rate is None else str(got.rate)
    assert (got.taxable, got.code_id, rate, got.source) == expected


def test_a_named_code_must_be_an_active_one_but_a_contacts_deleted_code_falls_back_to_the_default() -> None:
    with pytest.raises(ValidationError) as err:
        tax.resolve("goods", C(code_id="old"), NONE, NONE, rules())
    assert err.value.field == "tax_code_id"
    got = tax.resolve("goods", NONE, NONE, C(code_id="gone"), rules())
    assert (got.code_id, got.source) == ("ca", "tenant")


def test_no_default_code_means_taxable_lines_carry_no_tax() -> None:
    got = tax.resolve("goods", NONE, NONE, NONE, rules(default_code=None))
    assert (got.taxable, got.rate) == (True, None)


# ---------------------------------------------------------------------------- an invoice
def test_an_exempt_contacts_invoice_has_no_tax_and_its_lines_go_to_quickbooks_as_non() -> None:
    built = tax.apply(invoice(line(1, "100"), line(2, "50")), rules(contacts={"c1": C(taxable=False)}))
    assert (built.tax_total, built.total, built.tax_code_id, built.tax_rate) == (
        Decimal("0.00"),
        Decimal("150.00"),
        None,
        None,
    )
    assert {ln.tax_source for ln in built.lines} == {"contact"}
    settings = mapping.QboSettings(automated_tax=True)
    assert [
        mapping.sales_line(ln, None, settings)["SalesItemLineDetail"]["TaxCodeRef"]["value"]
        for ln in built.lines
    ] == [
        "NON",
        "NON",
    ]


def test_a_non_taxable_product_among_taxable_lines_is_left_out_of_the_tax() -> None:
    built = tax.apply(
        invoice(line(1, "100", product="chlorine"), line(2, "40", product="permit")),
        rules(products={"permit": C(taxable=False)}),
    )
    assert [(ln.taxable, ln.tax_source, ln.tax_amount) for ln in built.lines] == [
        (True, "tenant", Decimal("7.25")),
        (False, "product", Decimal("0.00")),
    ]
    assert (built.tax_total, built.total) == (Decimal("7.25"), Decimal("147.25"))
    codes = [
        mapping.sales_line(ln, None, mapping.QboSettings())["SalesItemLineDetail"]["TaxCodeRef"]["value"]
        for ln in built.lines
    ]
    assert codes == ["TAX", "NON"]


def test_two_rates_on_one_invoice_are_rounded_once_each() -> None:
    # 0.10 x 5 lines at 5 % = 0.025 -> 0.03 once (not 5 x 0.01); plus one line at 8.875 %
    lines = [line(n, "0.10") for n in range(1, 6)] + [line(6, "10.00")]
    edited = list(
        tax.apply(
            invoice(*lines),
            rules(codes=CODES | {"five": tax.TaxCode("five", "5", Decimal("5"))}, default_code="five"),
        ).lines
    )
    edited[5] = dm.InvoiceLine(
        **{
            **{f: getattr(edited[5], f) for f in edited[5].__dataclass_fields__},
            "tax_code_id": "nyc",
            "tax_rate": Decimal("8.875"),
            "tax_source": "line",
        }
    )
    out, total = tax.with_line_taxes(edited, Decimal("5"))
    assert total == Decimal("0.03") + Decimal("0.89")
    assert sum((ln.tax_amount for ln in out), Decimal("0")) == total


def test_a_zero_rate_code_sends_non() -> None:
    built = tax.apply(invoice(line(1, "100")), rules(contacts={"c1": C(code_id="zero")}))
    assert built.tax_total == Decimal("0.00") and built.lines[0].tax_source == "contact"
    assert mapping.sales_line(built.lines[0], None, mapping.QboSettings())["SalesItemLineDetail"][
        "TaxCodeRef"
    ] == {"value": "NON"}


def test_a_customer_is_sent_taxable_false_only_when_exempt_here() -> None:
    assert mapping.contact_to_qbo("A", taxable=False)["Taxable"] is False
    assert "Taxable" not in mapping.contact_to_qbo("A")


# ---------------------------------------------------------------------------- edits (PATCH /invoices/{id})
def content(built: dm.Invoice) -> invoice_edits.InvoiceContent:
    return invoice_edits.InvoiceContent(
        status=dm.InvoiceStatus.DRAFT,
        lines=built.lines,
        issue_date=built.issue_date,
        due_date=built.due_date,
        terms_days=None,
        tax_rate=built.tax_rate,
    )


def test_an_edit_can_untax_a_line_or_tax_it_at_its_own_code() -> None:
    built = tax.apply(invoice(line(1, "100"), line(2, "100")), rules())
    done = invoice_edits.apply_edit(
        content(built),
        invoice_edits.InvoiceEdit(
            lines=(
                invoice_edits.LineChange(line_no=1, taxable=False),
                invoice_edits.LineChange(line_no=2, tax_code_id="nyc", tax_rate=Decimal("8.875")),
            )
        ),
    )
    assert [(ln.taxable, ln.tax_code_id, ln.tax_source, ln.tax_amount) for ln in done.lines] == [
        (False, None, "line", Decimal("0.00")),
        (True, "nyc", "line", Decimal("8.88")),
    ]
    assert (done.tax_total, done.total) == (Decimal("8.88"), Decimal("208.88"))


def test_an_edit_naming_an_unknown_code_is_refused_naming_the_line() -> None:
    built = tax.apply(invoice(line(1, "100")), rules())
    with pytest.raises(ValidationError) as err:
        invoice_edits.apply_edit(
            content(built),
            invoice_edits.InvoiceEdit(lines=(invoice_edits.LineChange(line_no=1, tax_code_id="nope"),)),
        )
    assert err.value.field == "lines[0].tax_code_id"


def test_an_edit_that_leaves_the_lines_alone_keeps_their_tax() -> None:
    built = tax.apply(invoice(line(1, "100")), rules(contacts={"c1": C(code_id="nyc")}))
    done = invoice_edits.apply_edit(
        content(built),
        invoice_edits.InvoiceEdit(lines=(invoice_edits.LineChange(line_no=1, description="y"),)),
    )
    assert (done.lines[0].tax_code_id, done.tax_total) == ("nyc", Decimal("8.88"))


# ---------------------------------------------------------------------------- properties
choices = st.sampled_from([NONE, C(taxable=True), C(taxable=False), C(code_id="ca"), C(code_id="nyc")])
amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999"), places=2)


@given(choices, choices, choices, st.sampled_from(["goods", "task_entry", "manual"]))
def test_resolution_is_the_first_deciding_level(line_: tax.TaxChoice, product, contact, kind) -> None:
    got = tax.resolve(kind, line_, product, contact, rules())
    if line_.code_id or line_.taxable is False:
        assert got.source == "line"
    elif product.code_id or product.taxable is False:
        assert got.source == "product"
    elif contact.taxable is False:
        assert (got.source, got.taxable) == ("contact", False)
    else:
        marked = True in (line_.taxable, product.taxable)
        assert got.taxable == (marked or kind == "goods")
    # whatever decided, a line is taxed only at an active code, and untaxed lines carry no rate
    assert got.taxable or got.rate is None
    if got.code_id is not None:
        assert CODES[got.code_id].active and got.rate == CODES[got.code_id].rate


@given(
    st.lists(st.tuples(amounts, choices), min_size=1, max_size=12),
    st.sampled_from([NONE, C(taxable=False), C(code_id="nyc")]),
)
def test_line_taxes_add_up_to_the_invoice_tax_and_exempt_means_zero(spec, contact) -> None:
    lines = [line(n, str(a), product=f"p{n}") for n, (a, _) in enumerate(spec, start=1)]
    products = {f"p{n}": ch for n, (_, ch) in enumerate(spec, start=1) if ch != NONE}
    built = tax.apply(invoice(*lines), rules(products=products, contacts={"c1": contact}))
    assert sum((ln.tax_amount for ln in built.lines), Decimal("0")) == built.tax_total
    assert built.total == built.subtotal + built.tax_total
    for ln in built.lines:
        assert ln.taxable or ln.tax_amount == 0
    if contact.taxable is False and not any(ch.code_id for _, ch in spec):
        assert built.tax_total == 0


def test_an_edit_giving_a_line_a_non_taxable_product_untaxes_it_unless_the_line_names_a_code() -> None:
    built = tax.apply(invoice(line(1, "100"), line(2, "100")), rules())
    done = invoice_edits.apply_edit(
        content(built),
        invoice_edits.InvoiceEdit(
            lines=(
                invoice_edits.LineChange(
                    line_no=1,
                    product_id="permit",
                    product_name="Permit",
                    product_non_taxable=True,
                    taxable=True,
                ),
                invoice_edits.LineChange(
                    line_no=2,
                    product_id="permit",
                    product_name="Permit",
                    product_non_taxable=True,
                    tax_code_id="nyc",
                    tax_rate=Decimal("8.875"),
                ),
            )
        ),
    )
    assert [(ln.taxable, ln.tax_source) for ln in done.lines] == [(False, "product"), (True, "line")]
    assert done.tax_total == Decimal("8.88")


# ---------------------------------------------------------------- edits follow the invoice rules (issue 15)
# An edit is given the rules new invoices are made by (workflows/billing/destination.tax_rules):
# a line given a product, and a line added, are resolved as a new invoice would resolve them.
def with_contact(built: dm.Invoice) -> invoice_edits.InvoiceContent:
    import dataclasses

    return dataclasses.replace(content(built), contact_id=built.contact_id)


def test_an_edit_giving_a_line_back_a_taxable_product_taxes_it_again() -> None:
    taxed = rules(products={"permit": C(taxable=False)})
    built = tax.apply(invoice(line(1, "100", product="permit"), line(2, "100")), taxed)
    assert (built.lines[0].taxable, built.lines[0].tax_source) == (False, "product")
    done = invoice_edits.apply_edit(
        with_contact(built),
        invoice_edits.InvoiceEdit(
            lines=(
                invoice_edits.LineChange(line_no=1, product_id="chlorine", product_name="Chlorine"),
                invoice_edits.LineChange(line_no=2),
            )
        ),
        taxed,
    )
    # goods is a kind the company taxes: the tenant's default (7.25 %), as on a new invoice
    assert [(ln.taxable, ln.tax_code_id, ln.tax_source) for ln in done.lines] == [
        (True, "ca", "tenant"),
        (True, "ca", "tenant"),
    ]
    assert (done.tax_total, done.total) == (Decimal("14.50"), Decimal("214.50"))


def test_an_edit_resolves_a_changed_line_by_the_companys_kinds_and_the_contact() -> None:
    # the company taxes labour too (taxable_line_kinds); the contact has its own code
    kinds = rules(
        taxable_kinds=("goods", "task_entry"),
        products={"permit": C(taxable=False)},
        contacts={"c1": C(code_id="nyc")},
    )
    built = tax.apply(invoice(line(1, "100", kind="task_entry", product="permit")), kinds)
    assert built.tax_total == Decimal("0.00")
    done = invoice_edits.apply_edit(
        with_contact(built),
        invoice_edits.InvoiceEdit(
            lines=(invoice_edits.LineChange(line_no=1, product_id="labour", product_name="Labour"),)
        ),
        kinds,
    )
    assert (done.lines[0].tax_code_id, done.lines[0].tax_source, done.tax_total) == (
        "nyc",
        "contact",
        Decimal("8.88"),
    )
    # the same edit without those rules (a kind the company does not tax) leaves it untaxed
    plain = rules(products={"permit": C(taxable=False)})
    untaxed = invoice_edits.apply_edit(
        with_contact(built),
        invoice_edits.InvoiceEdit(
            lines=(invoice_edits.LineChange(line_no=1, product_id="labour", product_name="Labour"),)
        ),
        plain,
    )
    assert (untaxed.lines[0].taxable, untaxed.tax_total) == (False, Decimal("0.00"))


def test_an_edit_for_an_exempt_contact_does_not_tax_a_line_given_a_taxable_product() -> None:
    exempt = rules(products={"permit": C(taxable=False)}, contacts={"c1": C(taxable=False)})
    built = tax.apply(invoice(line(1, "100", product="permit")), exempt)
    done = invoice_edits.apply_edit(
        with_contact(built),
        invoice_edits.InvoiceEdit(
            lines=(invoice_edits.LineChange(line_no=1, product_id="chlorine", product_name="Chlorine"),)
        ),
        exempt,
    )
    assert (done.lines[0].taxable, done.lines[0].tax_source, done.tax_total) == (
        False,
        "contact",
        Decimal("0.00"),
    )


def test_a_line_added_by_hand_is_resolved_as_on_a_new_invoice() -> None:
    marked = rules(products={"filter": C(taxable=True), "permit": C(taxable=False)})
    built = tax.apply(invoice(line(1, "100", kind="task_entry")), marked)
    done = invoice_edits.apply_edit(
        with_contact(built),
        invoice_edits.InvoiceEdit(
            lines=(
                invoice_edits.LineChange(line_no=1),
                # a catalogue product marked taxable taxes a manual line; a non-taxable one does not
                invoice_edits.LineChange(
                    description="Filter",
                    quantity=Decimal("1"),
                    unit_price=Decimal("40"),
                    product_id="filter",
                    product_name="Filter",
                ),
                invoice_edits.LineChange(
                    description="Permit",
                    quantity=Decimal("1"),
                    unit_price=Decimal("10"),
                    product_id="permit",
                    product_name="Permit",
                ),
            )
        ),
        marked,
    )
    assert [(ln.taxable, ln.tax_source) for ln in done.lines] == [
        (False, "tenant"),
        (True, "tenant"),
        (False, "product"),
    ]
    assert done.tax_total == Decimal("2.90")


def test_a_line_whose_own_code_a_person_named_keeps_it_when_given_another_product() -> None:
    taxed = rules(products={"permit": C(taxable=False)})
    built = tax.apply(invoice(line(1, "100")), taxed)
    named = invoice_edits.apply_edit(
        with_contact(built),
        invoice_edits.InvoiceEdit(
            lines=(invoice_edits.LineChange(line_no=1, tax_code_id="nyc", tax_rate=Decimal("8.875")),)
        ),
        taxed,
    )
    again = invoice_edits.apply_edit(
        dataclasses_replace_lines(with_contact(built), named.lines),
        invoice_edits.InvoiceEdit(
            lines=(invoice_edits.LineChange(line_no=1, product_id="permit", product_name="Permit"),)
        ),
        taxed,
    )
    assert (again.lines[0].tax_code_id, again.lines[0].tax_source, again.tax_total) == (
        "nyc",
        "line",
        Decimal("8.88"),
    )


def dataclasses_replace_lines(
    current: invoice_edits.InvoiceContent, lines: tuple[dm.InvoiceLine, ...]
) -> invoice_edits.InvoiceContent:
    import dataclasses

    return dataclasses.replace(current, lines=lines)


# ---------------------------------------------------------------- tax-exempt reasons (issue 15)
def test_an_exemption_reason_is_one_of_intuits_ids_and_only_for_an_exempt_contact() -> None:
    assert sorted(tax.EXEMPTION_REASONS) == list(range(1, 16))
    tax.check_exemption_reason(9, True)
    tax.check_exemption_reason(None, False)
    for reason, exempt in ((0, True), (16, True), (99, True), (9, False), (9, None)):
        with pytest.raises(ValidationError) as err:
            tax.check_exemption_reason(reason, exempt)
        assert err.value.field == "tax_exemption_reason"


def test_a_customer_is_sent_its_exemption_reason_only_when_not_taxable() -> None:
    sent = mapping.contact_to_qbo("A", taxable=False, exemption_reason=9)
    assert (sent["Taxable"], sent["TaxExemptionReasonId"]) == (False, 9)
    assert "TaxExemptionReasonId" not in mapping.contact_to_qbo("A", taxable=True, exemption_reason=9)
    assert "TaxExemptionReasonId" not in mapping.contact_to_qbo("A", taxable=False)


def test_a_line_an_edit_resolves_to_the_default_code_is_taxed_at_the_rate_the_invoice_copied() -> None:
    # Given an invoice made at the default code's 7.25 %, whose rate has since changed to 1 %
    built = tax.apply(invoice(line(1, "100")), rules())
    assert built.tax_rate == Decimal("7.25")
    later = rules(codes=CODES | {"ca": tax.TaxCode("ca", "California", Decimal("1"))})
    # When a taxable line is added by hand
    done = invoice_edits.apply_edit(
        with_contact(built),
        invoice_edits.InvoiceEdit(
            lines=(
                invoice_edits.LineChange(line_no=1),
                invoice_edits.LineChange(
                    description="Filter",
                    quantity=Decimal("1"),
                    unit_price=Decimal("100"),
                    product_id="p",
                    product_name="p",
                    taxable=True,
                ),
            )
        ),
        later,
    )
    # Then it is taxed at the rate the invoice copied: a code's new rate never moves an invoice
    assert [ln.tax_rate for ln in done.lines] == [Decimal("7.25"), Decimal("7.25")]
    assert done.tax_total == Decimal("14.50")
