"""Sales tax with QuickBooks (issue 15 item 3): automated tax on, QuickBooks computes it and its
TotalTax and TotalAmt become the invoice's; off, ours is sent and both totals agree."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fieldbill.domain import tax
from fieldbill.quickbooks import tokens
from fieldbill.store.models import Invoice
from tests.integration.test_qbo_sync import (
    load_invoice,
    ours,
    qbo_connect,
    qbo_tenant,
    seed_contact,
    seed_invoice,
    seed_product,
    send,
    wait_settled,
)

pytestmark = pytest.mark.integration


def taxable_invoice(tenant: str, tax_total: str = "0.00", rate: str | None = None) -> Invoice:
    """The usual two lines (120.00 + 25.00), both taxable, with our tax on them."""
    invoice = seed_invoice(tenant)
    lines = list(invoice.lines)
    for line in lines:
        line.taxable = True
    total = invoice.subtotal + Decimal(tax_total)
    invoice.update(
        actions=[
            Invoice.lines.set(lines),
            Invoice.tax_total.set(Decimal(tax_total)),
            Invoice.total.set(total),
            Invoice.balance.set(total),
            *([Invoice.tax_rate.set(Decimal(rate))] if rate else []),
        ]
    )
    return load_invoice(tenant, invoice.id)


def test_automated_tax_on_quickbooks_computes_it_and_the_invoice_shows_its_figures(stack):
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant, automated_sales_tax=True, tax_rates={"CA": "7.25"})
    tokens.save_settings(tenant, {"automated_tax": True}, "test")
    # The customer lives in California (QuickBooks rates by the customer's location)
    stack.emulator.user_create(
        realm, "Customer", {"DisplayName": "Tax Owner", "ShipAddr": {"CountrySubDivisionCode": "CA"}}
    )
    seed_contact(tenant, "Tax Owner")
    seed_product(tenant, "Service")
    invoice = taxable_invoice(tenant)
    assert invoice.total == Decimal("145.00")  # no rate of ours: QuickBooks decides
    send(stack, tenant, invoice.id)
    (synced,) = wait_settled(tenant, [invoice.id])
    assert synced.sync_status == "synced", synced.sync_error
    (qbo,) = ours(stack, realm)
    # 145.00 x 7.25 % = 10.5125 -> 10.51, computed by QuickBooks from the TAX lines
    assert Decimal(str(qbo["TxnTaxDetail"]["TotalTax"])) == Decimal("10.51")
    assert {
        ln["SalesItemLineDetail"]["TaxCodeRef"]["value"] for ln in qbo["Line"] if "SalesItemLineDetail" in ln
    } == {"TAX"}
    assert (synced.tax_total, synced.total, synced.balance) == (
        Decimal("10.51"),
        Decimal("155.51"),
        Decimal("155.51"),
    )
    assert (synced.qbo_tax_total, synced.qbo_total, synced.tax_source) == (
        Decimal("10.51"),
        Decimal("155.51"),
        "quickbooks",
    )
    assert not tax.differs(synced.total, synced.qbo_total)


def test_automated_tax_off_our_tax_is_sent_and_the_totals_agree(stack):
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant)
    seed_contact(tenant, "Our Tax Owner")
    seed_product(tenant, "Service")
    invoice = taxable_invoice(tenant, tax_total="7.25", rate="5")  # 145.00 x 5 % = 7.25
    send(stack, tenant, invoice.id)
    (synced,) = wait_settled(tenant, [invoice.id])
    assert synced.sync_status == "synced", synced.sync_error
    (qbo,) = ours(stack, realm)
    assert Decimal(str(qbo["TxnTaxDetail"]["TotalTax"])) == Decimal("7.25")
    assert Decimal(str(qbo["TotalAmt"])) == Decimal("152.25") == synced.total == synced.qbo_total
    assert synced.tax_source is None and not tax.differs(synced.total, synced.qbo_total)
