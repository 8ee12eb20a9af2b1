"""Invoice money arithmetic is exact (Decimal, round-half-up per line), checked in-process."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.qbo_emulator import QboFault

CENT = Decimal("0.01")
qty = st.decimals(min_value="0.01", max_value="999", places=2)
price = st.decimals(min_value="0", max_value="9999.99", places=3)


@pytest.fixture(scope="module")
def books(emu):
    realm = emu.create_company()
    customer = emu.user_create(realm, "Customer", {"DisplayName": "Math"})
    item = emu.user_create(realm, "Item", {"Name": "Thing", "Type": "NonInventory"})
    return realm, customer["Id"], item["Id"]


def _line(item_id: str, q: Decimal, p: Decimal, amount: Decimal) -> dict:
    detail = {"ItemRef": {"value": item_id}, "Qty": q, "UnitPrice": p}
    return {"DetailType": "SalesItemLineDetail", "Amount": amount, "SalesItemLineDetail": detail}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.tuples(qty, price), min_size=1, max_size=8), tax=st.decimals("0", "99.99", places=2))
def test_total_is_exact(emu, books, lines, tax):
    realm, customer_id, item_id = books
    amounts = [(q * p).quantize(CENT, ROUND_HALF_UP) for q, p in lines]
    body = {
        "CustomerRef": {"value": customer_id},
        "Line": [_line(item_id, q, p, a) for (q, p), a in zip(lines, amounts, strict=True)],
        "TxnTaxDetail": {"TotalTax": tax},
    }
    invoice = emu.user_create(realm, "Invoice", body)
    assert invoice["Line"][-1]["Amount"] == sum(amounts)
    assert invoice["TotalAmt"] == sum(amounts) + tax == invoice["Balance"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(q=qty, p=price)
def test_off_by_a_cent_is_6070(emu, books, q, p):
    realm, customer_id, item_id = books
    wrong = (q * p).quantize(CENT, ROUND_HALF_UP) + CENT
    with pytest.raises(QboFault) as info:
        emu.user_create(
            realm, "Invoice", {"CustomerRef": {"value": customer_id}, "Line": [_line(item_id, q, p, wrong)]}
        )
    assert info.value.code == "6070"
