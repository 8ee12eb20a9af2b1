"""Entity rules: validation, computed fields and side effects, as QuickBooks applies them.

Every public method runs with ``store.lock`` held by the caller or takes it itself; validation happens
before anything is written, so a fault never leaves a half-applied change.
"""

from __future__ import annotations

import copy
import re
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from . import errors
from .clock import Clock, fmt_date, fmt_time
from .jsonutil import to_decimal
from .store import CLASSIFICATION, Company, Store

CENT = Decimal("0.01")
ZERO = Decimal(0)
# In the request parameters handed to _prepare: the client sent TxnTaxDetail.TotalTax itself.
TAX_SENT = "__tax_sent"

# URL segment (lower case) -> entity name
URL_ENTITIES = {
    "customer": "Customer",
    "item": "Item",
    "account": "Account",
    "taxcode": "TaxCode",
    "invoice": "Invoice",
    "payment": "Payment",
    "creditmemo": "CreditMemo",
    "preferences": "Preferences",
    "companyinfo": "CompanyInfo",
}
WRITABLE = {"Customer", "Item", "Account", "Invoice", "Payment", "CreditMemo"}
DELETABLE = {"Invoice", "Payment", "CreditMemo"}
# CreditMemo: the reference lists create/read/query/update/delete; a void is what the UI offers
# (More > Void) and what the entity's operation=void answers like Invoice's (amounts zeroed).
VOIDABLE = {"Invoice", "Payment", "CreditMemo"}
ALWAYS_READ_ONLY = {"Id", "SyncToken", "MetaData", "domain", "sparse"}
COMPUTED = {
    "Customer": {"Balance", "BalanceWithJobs", "FullyQualifiedName"},
    "Item": {"FullyQualifiedName"},
    "Account": {"FullyQualifiedName", "Classification", "CurrentBalance", "CurrentBalanceWithSubAccounts"},
    "Invoice": {"TotalAmt", "Balance", "HomeTotalAmt", "HomeBalance", "LinkedTxn"},
    "Payment": {"UnappliedAmt"},
    # CreditMemo (Intuit Accounting API reference, CreditMemo object): TotalAmt, Balance and
    # RemainingCredit are read-only; Balance = RemainingCredit = the credit not yet applied by a
    # Payment (a Payment line whose LinkedTxn is TxnType "CreditMemo").
    "CreditMemo": {"TotalAmt", "Balance", "RemainingCredit", "HomeTotalAmt", "HomeBalance"},
}
ITEM_TYPES = {"Service", "NonInventory", "Inventory", "Category", "Group"}
EMAIL_STATUSES = {"NotSet", "NeedToSend", "EmailSent"}
DELETED_SUFFIX = " (deleted)"
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SENDABLE = {"Invoice", "CreditMemo"}
EMAIL_RE = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")


def round_money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == {} or value == []


def _money(value: Any, element: str, required: bool = False) -> Decimal | None:
    try:
        result = to_decimal(value)
    except ValueError as exc:
        raise errors.invalid_property(element, f"{element}: {exc}") from exc
    if result is None and required:
        raise errors.required(element)
    return result


def _ref_value(ref: Any) -> str | None:
    value = ref.get("value") if isinstance(ref, dict) else ref
    return None if _blank(value) else str(value)


def _check_len(data: dict[str, Any], key: str, max_len: int, element: str | None = None) -> None:
    value = data.get(key)
    if isinstance(value, str) and len(value) > max_len:
        raise errors.string_length(element or key, max_len, len(value))


def _check_date(data: dict[str, Any], key: str) -> None:
    value = data.get(key)
    if value is not None and not (isinstance(value, str) and DATE_RE.match(value)):
        raise errors.invalid_property(key, f"{key}: invalid date {value!r}, expected yyyy-MM-dd")


def _norm_name(name: str) -> str:
    return " ".join(name.split()).casefold()


class Accounting:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    # ---- reads -------------------------------------------------------------------------------
    def read(self, c: Company, entity: str, id_: str) -> dict[str, Any]:
        with self.store.lock:
            if entity in c.singletons:
                return {entity: copy.deepcopy(c.singletons[entity])}
            record = c.get(entity, id_)
            if record is None:
                raise errors.not_found(entity, id_)
            return {entity: copy.deepcopy(record)}

    # ---- create / update ---------------------------------------------------------------------
    def save(
        self, c: Company, entity: str, body: Any, params: dict[str, str] | None = None, as_user: bool = False
    ) -> dict[str, Any]:
        """POST /<entity>: an Id means update (full, or sparse with "sparse": true), else create."""
        params = params or {}
        if not isinstance(body, dict):
            raise errors.invalid_property(entity, f"Request body must be a JSON {entity} object")
        if entity not in WRITABLE:
            raise errors.unsupported(f"Operation Create/Update is not supported for {entity}.")
        with self.store.lock:
            now = self.clock.now()
            id_ = body.get("Id")
            incoming = {k: v for k, v in body.items() if k not in ALWAYS_READ_ONLY | COMPUTED[entity]}
            if entity == "Invoice":
                sent = incoming.get("TxnTaxDetail")
                explicit = isinstance(sent, dict) and sent.get("TotalTax") is not None
                params = {**params, TAX_SENT: "1" if explicit else ""}
            if not _blank(id_):
                existing = c.get(entity, id_)
                if existing is None:
                    raise errors.not_found(entity, id_)
                if not as_user:
                    self._check_sync_token(entity, existing, body)
                if body.get("sparse") is True or as_user:
                    draft = {
                        k: copy.deepcopy(v)
                        for k, v in existing.items()
                        if k not in ALWAYS_READ_ONLY | COMPUTED[entity]
                    }
                    draft.update(copy.deepcopy(incoming))
                else:
                    draft = copy.deepcopy(incoming)
                record = self._prepare(c, entity, draft, existing, params, now)
                record["Id"] = existing["Id"]
                record["SyncToken"] = str(int(existing["SyncToken"]) + 1)
                record["MetaData"] = copy.deepcopy(existing["MetaData"])
                operation = "Update"
            else:
                existing = None
                record = self._prepare(c, entity, copy.deepcopy(incoming), None, params, now)
                record["Id"] = c.new_id(entity)
                record["SyncToken"] = "0"
                record["MetaData"] = {}
                operation = "Create"
            record["domain"] = "QBO"
            record["sparse"] = False
            c.entities[entity][record["Id"]] = record
            self.store.touch(c, entity, record, operation, now)
            self._after_save(c, entity, record, existing, now)
            return {entity: copy.deepcopy(record)}

    def _check_sync_token(self, entity: str, existing: dict[str, Any], body: dict[str, Any]) -> None:
        supplied = body.get("SyncToken")
        if _blank(supplied):
            raise errors.required("SyncToken")
        if str(supplied) != existing["SyncToken"]:
            raise errors.stale(entity, existing["Id"], supplied, existing["SyncToken"])

    def _prepare(
        self,
        c: Company,
        entity: str,
        data: dict[str, Any],
        existing: dict[str, Any] | None,
        params: dict[str, str],
        now: float,
    ) -> dict[str, Any]:
        prepare = getattr(self, f"_prepare_{entity.lower()}")
        return prepare(c, data, existing, params, now)

    # ---- Customer ----------------------------------------------------------------------------
    def _prepare_customer(self, c: Company, d: dict[str, Any], existing, params, now) -> dict[str, Any]:
        name = d.get("DisplayName")
        if _blank(name):
            parts = [d.get(k) for k in ("Title", "GivenName", "MiddleName", "FamilyName", "Suffix")]
            name = " ".join(str(p).strip() for p in parts if not _blank(p)) or d.get("CompanyName")
        if _blank(name):
            raise errors.required("DisplayName")
        name = str(name).strip()
        active = d.get("Active", True) is not False
        was_active = existing is None or existing.get("Active", True) is not False
        if active and name.endswith(DELETED_SUFFIX) and not was_active:
            name = name[: -len(DELETED_SUFFIX)]
        if ":" in name:
            raise errors.invalid_character("DisplayName", ":")
        if len(name) > 500:
            raise errors.string_length("DisplayName", 500, len(name))
        if not active and was_active:
            # QuickBooks renames made-inactive names so the name becomes free again
            name = f"{name}{DELETED_SUFFIX}"
        self._unique_name(c, "Customer", "DisplayName", name, existing, "customer, vendor or employee")
        for key, max_len in (("GivenName", 100), ("FamilyName", 100), ("CompanyName", 100), ("Notes", 2000)):
            _check_len(d, key, max_len)
        # issue 17: QuickBooks keeps a customer's PrimaryPhone and BillAddr as given (Line1-5, City,
        # CountrySubDivisionCode, PostalCode, Country) and numbers the address (PhysicalAddress.Id,
        # kept across updates)
        phone = d.get("PrimaryPhone")
        if isinstance(phone, dict):
            _check_len(phone, "FreeFormNumber", 30, "PrimaryPhone.FreeFormNumber")
        addr = d.get("BillAddr")
        if isinstance(addr, dict):
            for key in (
                "Line1",
                "Line2",
                "Line3",
                "Line4",
                "Line5",
                "City",
                "CountrySubDivisionCode",
                "Country",
            ):
                _check_len(addr, key, 500, f"BillAddr.{key}")
            _check_len(addr, "PostalCode", 30, "BillAddr.PostalCode")
            old = (existing or {}).get("BillAddr") or {}
            addr.setdefault("Id", old.get("Id") or c.new_id("PhysicalAddress"))
        d["DisplayName"] = name
        d["FullyQualifiedName"] = name
        d["Active"] = active
        d.setdefault("Job", False)
        d.setdefault("BillWithParent", False)
        if d.get("TaxExemptionReasonId") is not None:
            # Intuit, Customer entity (minor version 10+): Taxable defaults to "false if
            # TaxExemptionReasonId is set" (issue 15)
            d.setdefault("Taxable", False)
        d.setdefault("Taxable", True)
        d.setdefault("PreferredDeliveryMethod", "Print")
        d.setdefault("CurrencyRef", {"value": "USD", "name": "United States Dollar"})
        balance = existing.get("Balance", ZERO) if existing else ZERO
        d["Balance"] = balance
        d["BalanceWithJobs"] = balance
        return d

    def _unique_name(
        self, c: Company, entity: str, key: str, name: str, existing: dict[str, Any] | None, what: str
    ) -> None:
        wanted = _norm_name(name)
        for other in c.entities[entity].values():
            if existing is not None and other["Id"] == existing["Id"]:
                continue
            if _norm_name(str(other.get(key, ""))) == wanted:
                fault = errors.duplicate_name(what)
                fault.detail += f" Id={other['Id']}"
                fault.element = key
                raise fault

    # ---- Item --------------------------------------------------------------------------------
    def _prepare_item(self, c: Company, d: dict[str, Any], existing, params, now) -> dict[str, Any]:
        name = d.get("Name")
        if _blank(name):
            raise errors.required("Name")
        name = str(name).strip()
        active = d.get("Active", True) is not False
        was_active = existing is None or existing.get("Active", True) is not False
        if active and name.endswith(DELETED_SUFFIX) and not was_active:
            name = name[: -len(DELETED_SUFFIX)]
        if ":" in name:
            raise errors.invalid_character("Name", ":")
        if len(name) > 100:
            raise errors.string_length("Name", 100, len(name))
        if not active and was_active:
            name = f"{name}{DELETED_SUFFIX}"
        self._unique_name(c, "Item", "Name", name, existing, "product or service")
        item_type = d.get("Type")
        if _blank(item_type):
            item_type = existing.get("Type") if existing else "NonInventory"
        if item_type not in ITEM_TYPES:
            raise errors.invalid_property("Type", f"Type: {item_type!r} is not one of {sorted(ITEM_TYPES)}")
        for key in ("IncomeAccountRef", "ExpenseAccountRef", "AssetAccountRef"):
            if _blank(d.get(key)):
                d.pop(key, None)
                continue
            d[key] = self._account_ref(c, d[key], key)
        if item_type in ("Service", "Inventory") and "IncomeAccountRef" not in d:
            raise errors.business("Business Validation Error: Select an income account.", "IncomeAccountRef")
        if item_type == "Inventory":
            for key in ("AssetAccountRef", "ExpenseAccountRef"):
                if key not in d:
                    raise errors.business(f"Business Validation Error: {key} is required for Inventory.", key)
            if _blank(d.get("InvStartDate")):
                raise errors.required("InvStartDate")
            d["TrackQtyOnHand"] = True
            d["QtyOnHand"] = _money(d.get("QtyOnHand"), "QtyOnHand") or ZERO
        for key in ("UnitPrice", "PurchaseCost"):
            if key in d:
                d[key] = _money(d[key], key) or ZERO
        _check_len(d, "Description", 4000)
        _check_len(d, "Sku", 100)
        d["Name"] = name
        d["FullyQualifiedName"] = name
        d["Type"] = item_type
        d["Active"] = active
        d.setdefault("Taxable", False)
        return d

    def _account_ref(self, c: Company, ref: Any, element: str) -> dict[str, Any]:
        value = _ref_value(ref)
        account = c.get("Account", value) if value else None
        if account is None:
            raise errors.invalid_reference(element, value)
        if account.get("Active") is False:
            raise errors.not_found("Account", value)
        return {"value": account["Id"], "name": account["Name"]}

    # ---- Account -----------------------------------------------------------------------------
    def _prepare_account(self, c: Company, d: dict[str, Any], existing, params, now) -> dict[str, Any]:
        name = d.get("Name")
        if _blank(name):
            raise errors.required("Name")
        name = str(name).strip()
        if ":" in name or '"' in name:
            raise errors.invalid_character("Name", ":" if ":" in name else '"')
        if len(name) > 100:
            raise errors.string_length("Name", 100, len(name))
        self._unique_name(c, "Account", "Name", name, existing, "account")
        acct_type = d.get("AccountType")
        if _blank(acct_type):
            raise errors.required("AccountType")
        if acct_type not in CLASSIFICATION:
            raise errors.invalid_property("AccountType", f"AccountType: {acct_type!r} is not supported")
        d["Name"] = name
        d["FullyQualifiedName"] = name
        d["Classification"] = CLASSIFICATION[acct_type]
        d["Active"] = d.get("Active", True) is not False
        d.setdefault("SubAccount", False)
        d.setdefault("CurrencyRef", {"value": "USD", "name": "United States Dollar"})
        balance = existing.get("CurrentBalance", ZERO) if existing else ZERO
        d["CurrentBalance"] = balance
        d["CurrentBalanceWithSubAccounts"] = balance
        return d

    # ---- Invoice -----------------------------------------------------------------------------
    def _customer_ref(self, c: Company, d: dict[str, Any]) -> dict[str, Any]:
        value = _ref_value(d.get("CustomerRef"))
        if value is None:
            raise errors.required("CustomerRef")
        customer = c.get("Customer", value)
        if customer is None:
            raise errors.invalid_reference("CustomerRef", value)
        if customer.get("Active") is False:
            raise errors.not_found("Customer", value)
        return {"value": customer["Id"], "name": customer["DisplayName"]}

    def _txn_lines(self, c: Company, d: dict[str, Any]) -> tuple[list[dict[str, Any]], Decimal, Decimal]:
        """The sales form lines of an Invoice or a CreditMemo (one set of rules for both, as the
        reference gives them one Line type): d["Line"] rewritten with ids, numbers and the computed
        subtotal; the sales lines, the subtotal and the discount total returned."""
        lines_in = d.get("Line")
        if not isinstance(lines_in, list) or not [ln for ln in lines_in if isinstance(ln, dict)]:
            raise errors.required("Line")
        lines: list[dict[str, Any]] = []
        discounts: list[dict[str, Any]] = []
        subtotal = ZERO
        for raw in lines_in:
            if not isinstance(raw, dict):
                raise errors.invalid_property("Line", "Line: each line must be an object")
            line = dict(raw)
            kind = line.get("DetailType")
            if kind == "SubTotalLineDetail":
                continue  # recomputed by the server
            if kind == "SalesItemLineDetail":
                subtotal += self._sales_line(c, line)
                lines.append(line)
            elif kind == "DescriptionOnly":
                line["Amount"] = _money(line.get("Amount"), "Line.Amount") or ZERO
                line.setdefault("DescriptionLineDetail", {})
                subtotal += line["Amount"]
                lines.append(line)
            elif kind == "DiscountLineDetail":
                discounts.append(line)
            elif _blank(kind):
                raise errors.required("Line.DetailType")
            else:
                raise errors.invalid_property("Line.DetailType", f"DetailType {kind!r} is not supported")
        if len(lines) + len(discounts) > 750:
            raise errors.business("Business Validation Error: An invoice can have at most 750 lines.", "Line")
        discount_total = ZERO
        for line in discounts:
            detail = line.setdefault("DiscountLineDetail", {})
            if detail.get("PercentBased"):
                pct = _money(detail.get("DiscountPercent"), "Line.DiscountLineDetail.DiscountPercent", True)
                assert pct is not None
                line["Amount"] = round_money(subtotal * pct / 100)
            else:
                line["Amount"] = _money(line.get("Amount"), "Line.Amount", True)
            discount_total += line["Amount"]
        out_lines: list[dict[str, Any]] = []
        for n, line in enumerate(lines, start=1):
            line["Id"] = str(n)
            line["LineNum"] = n
            out_lines.append(line)
        out_lines.append({"Amount": subtotal, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
        for n, line in enumerate(discounts, start=len(lines) + 1):
            line["Id"] = str(n)
            line["LineNum"] = n
            out_lines.append(line)
        d["Line"] = out_lines
        return lines, subtotal, discount_total

    def _txn_totals(self, c: Company, d: dict[str, Any], params) -> tuple[Any, Any, Any]:
        """Lines, discount and tax of a sales transaction (invoice or credit memo): the tax sent,
        or the automated one when the company computes it; TxnTaxDetail set on `d`."""
        lines, subtotal, discount_total = self._txn_lines(c, d)
        raw_tax = d.get("TxnTaxDetail")
        tax_detail: dict[str, Any] = raw_tax if isinstance(raw_tax, dict) else {}
        tax = _money(tax_detail.get("TotalTax"), "TxnTaxDetail.TotalTax") or ZERO
        if c.automated_sales_tax:
            explicit = tax if params.get(TAX_SENT) else None
            d["ApplyTaxAfterDiscount"] = bool(d.get("ApplyTaxAfterDiscount", False))
            tax_detail = self._automated_tax(c, d, lines, subtotal, discount_total, explicit)
            tax = tax_detail["TotalTax"]
        tax_detail["TotalTax"] = tax
        d["TxnTaxDetail"] = tax_detail
        return tax, subtotal, discount_total

    def _prepare_invoice(self, c: Company, d: dict[str, Any], existing, params, now) -> dict[str, Any]:
        d["CustomerRef"] = self._customer_ref(c, d)
        tax, subtotal, discount_total = self._txn_totals(c, d, params)
        d["TotalAmt"] = subtotal - discount_total + tax
        if existing is not None and ("Invoice", existing["Id"]) in c.voided:
            d["TotalAmt"] = ZERO

        self._doc_number(c, d, existing, params)
        _check_len(d, "PrivateNote", 4000)
        if isinstance(d.get("CustomerMemo"), dict):
            _check_len(d["CustomerMemo"], "value", 1000, "CustomerMemo")
        for key in ("TxnDate", "DueDate", "ShipDate"):
            if d.get(key) == "":
                d.pop(key)
            _check_date(d, key)
        d.setdefault("TxnDate", existing.get("TxnDate") if existing else fmt_date(now, c.tz_offset))
        if "DueDate" not in d:
            d["DueDate"] = (date.fromisoformat(d["TxnDate"]) + timedelta(days=30)).isoformat()
        status = d.get("EmailStatus") or "NotSet"
        if status not in EMAIL_STATUSES:
            raise errors.invalid_property("EmailStatus", f"EmailStatus {status!r} is not supported")
        if status == "NeedToSend" and _blank((d.get("BillEmail") or {}).get("Address")):
            raise errors.business(
                "Business Validation Error: Need to specify a BillEmail address when EmailStatus is "
                "NeedToSend.",
                "BillEmail",
            )
        d["EmailStatus"] = status
        d["PrintStatus"] = d.get("PrintStatus") or "NotSet"
        d.setdefault("CurrencyRef", {"value": "USD", "name": "United States Dollar"})
        d.setdefault("ApplyTaxAfterDiscount", False)
        d["LinkedTxn"] = copy.deepcopy(existing.get("LinkedTxn", [])) if existing else []
        d["Balance"] = d["TotalAmt"]  # payments are applied in _after_save
        return d

    def _automated_tax(
        self,
        c: Company,
        d: dict[str, Any],
        lines: list[dict[str, Any]],
        subtotal: Decimal,
        discount_total: Decimal,
        explicit: Decimal | None,
    ) -> dict[str, Any]:
        """TxnTaxDetail as automated sales tax computes it (reference §4): the rate of the customer's
        location (ship-to, else bill-to; postal code, else state) on the lines whose TaxCode is
        taxable, rounded half-up to cents once for the invoice (ruckus/quickbooks-ruby#547); an
        explicit TotalTax from the client overrides the computed one."""
        taxable = ZERO
        for line in lines:
            code = _ref_value(line["SalesItemLineDetail"].get("TaxCodeRef"))
            tax_code = c.get("TaxCode", code) if code is not None else None
            if tax_code is not None and tax_code.get("Taxable"):
                taxable += line["Amount"]
        if d["ApplyTaxAfterDiscount"] and subtotal and discount_total:
            taxable -= discount_total * taxable / subtotal  # the discount's taxable share
        rate = self._location_rate(c, d)
        customer = c.get("Customer", d["CustomerRef"]["value"]) or {}
        if customer.get("Taxable") is False:
            # A non-taxable (exempt) customer's lines are not taxed whatever their codes (Intuit,
            # Customer entity: "Taxable: If true, transactions for this customer are taxable").
            taxable = ZERO
        computed = round_money(taxable * rate / 100) if rate is not None else ZERO
        total = computed if explicit is None else explicit
        detail: dict[str, Any] = {"TotalTax": total, "TaxLine": []}
        if rate is not None:
            detail["TaxLine"].append(
                {
                    "Amount": total,
                    "DetailType": "TaxLineDetail",
                    "TaxLineDetail": {
                        "PercentBased": True,
                        "TaxPercent": rate,
                        "NetAmountTaxable": round_money(taxable),
                    },
                }
            )
        return detail

    @staticmethod
    def _location_rate(c: Company, d: dict[str, Any]) -> Decimal | None:
        customer = c.get("Customer", d["CustomerRef"]["value"]) or {}
        for address in (
            d.get("ShipAddr"),
            customer.get("ShipAddr"),
            d.get("BillAddr"),
            customer.get("BillAddr"),
        ):
            if not isinstance(address, dict) or not address:
                continue
            postal = str(address.get("PostalCode") or "").strip().upper()
            state = str(address.get("CountrySubDivisionCode") or "").strip().upper()
            for key in (postal, postal.split("-")[0], state):
                if key and key in c.tax_rates:
                    return c.tax_rates[key]
            return None  # the first address given is the location, rated or not
        return None

    def _sales_line(self, c: Company, line: dict[str, Any]) -> Decimal:
        amount = _money(line.get("Amount"), "Line.Amount", required=True)
        assert amount is not None
        detail = dict(line.get("SalesItemLineDetail") or {})
        item_id = _ref_value(detail.get("ItemRef"))
        if item_id is not None:
            item = c.get("Item", item_id)
            if item is None:
                raise errors.invalid_reference("Line.SalesItemLineDetail.ItemRef", item_id)
            if item.get("Active") is False:
                raise errors.not_found("Item", item_id)
            detail["ItemRef"] = {"value": item["Id"], "name": item["Name"]}
        else:
            detail.pop("ItemRef", None)
        qty = _money(detail.get("Qty"), "Line.SalesItemLineDetail.Qty")
        price = _money(detail.get("UnitPrice"), "Line.SalesItemLineDetail.UnitPrice")
        if qty is not None and price is not None:
            expected = round_money(qty * price)
            if amount != expected:
                raise QboAmountFault(amount, qty, price)
        elif qty is not None and qty != 0 and price is None:
            price = amount / qty
        for key, value in (("Qty", qty), ("UnitPrice", price)):
            if value is None:
                detail.pop(key, None)
            else:
                detail[key] = value
        tax_code = _ref_value(detail.get("TaxCodeRef"))
        if tax_code is not None:
            if c.get("TaxCode", tax_code) is None:
                raise errors.invalid_reference("Line.SalesItemLineDetail.TaxCodeRef", tax_code)
            detail["TaxCodeRef"] = {"value": tax_code}
        else:
            detail.pop("TaxCodeRef", None)
        if detail.get("ServiceDate") == "":
            detail.pop("ServiceDate")
        _check_date(detail, "ServiceDate")
        _check_len(line, "Description", 4000, "Line.Description")
        line["Amount"] = amount
        line["SalesItemLineDetail"] = detail
        return amount

    def _doc_number(self, c: Company, d: dict[str, Any], existing, params) -> None:
        doc = d.get("DocNumber")
        if _blank(doc):
            if existing is not None and not _blank(existing.get("DocNumber")):
                d["DocNumber"] = existing["DocNumber"]
                return
            d.pop("DocNumber", None)
            if existing is None and not c.custom_txn_numbers:
                taken = {inv.get("DocNumber") for inv in c.entities["Invoice"].values()}
                while str(c.next_doc_number) in taken:
                    c.next_doc_number += 1
                d["DocNumber"] = str(c.next_doc_number)
                c.next_doc_number += 1
            return
        doc = str(doc)
        if len(doc) > 21:
            raise errors.string_length("DocNumber", 21, len(doc))
        include = {p.strip().lower() for p in params.get("include", "").split(",")}
        if "allowduplicatedocnum" not in include:
            for other in c.entities["Invoice"].values():
                if existing is not None and other["Id"] == existing["Id"]:
                    continue
                if other.get("DocNumber") == doc:
                    raise errors.QboFault(
                        6140,
                        "Duplicate Document Number Error",
                        "Duplicate Document Number Error : You must specify a different number. This number "
                        f"has already been used. DocNumber={doc} is assigned to TxnType=Invoice with "
                        f"TxnId={other['Id']}",
                        "DocNumber",
                    )
        d["DocNumber"] = doc
        if doc.isdigit() and int(doc) >= c.next_doc_number:
            c.next_doc_number = int(doc) + 1

    # ---- CreditMemo --------------------------------------------------------------------------
    # Intuit Accounting API reference, CreditMemo object (developer.intuit.com .../all-entities/
    # creditmemo): CustomerRef and Line required, lines as on an Invoice; TotalAmt computed; Balance
    # and RemainingCredit are what is not applied yet. A credit memo lowers its customer's Balance
    # by its RemainingCredit until a Payment applies it to an invoice (a Payment line linking the
    # CreditMemo beside one linking the Invoice: python-quickbooks' LinkedTxn, TxnType
    # "CreditMemo"), which then lowers the invoice's Balance instead.
    def _prepare_creditmemo(self, c: Company, d: dict[str, Any], existing, params, now) -> dict[str, Any]:
        d["CustomerRef"] = self._customer_ref(c, d)
        tax, subtotal, discount_total = self._txn_totals(c, d, params)
        total = subtotal - discount_total + tax
        if total < 0:
            raise errors.business("Business Validation Error: A credit memo cannot be negative.", "Line")
        if existing is not None and ("CreditMemo", existing["Id"]) in c.voided:
            total = ZERO
        applied = self._credit_applied(c, existing["Id"]) if existing else ZERO
        if total < applied:
            raise errors.business(
                f"Business Validation Error: The credit memo total {total} is less than the {applied} "
                "already applied to invoices.",
                "Line",
            )
        doc = d.get("DocNumber")
        if _blank(doc):
            if existing is not None and not _blank(existing.get("DocNumber")):
                d["DocNumber"] = existing["DocNumber"]
            elif existing is None and not c.custom_txn_numbers:
                # sales forms share QuickBooks' automatic numbering (invoice, sales receipt, credit memo)
                d["DocNumber"] = str(c.next_doc_number)
                c.next_doc_number += 1
            else:
                d.pop("DocNumber", None)
        else:
            _check_len(d, "DocNumber", 21)
            d["DocNumber"] = str(doc)
        _check_len(d, "PrivateNote", 4000)
        if isinstance(d.get("CustomerMemo"), dict):
            _check_len(d["CustomerMemo"], "value", 1000, "CustomerMemo")
        if d.get("TxnDate") == "":
            d.pop("TxnDate")
        _check_date(d, "TxnDate")
        d.setdefault("TxnDate", existing.get("TxnDate") if existing else fmt_date(now, c.tz_offset))
        status = d.get("EmailStatus") or "NotSet"
        if status not in EMAIL_STATUSES:
            raise errors.invalid_property("EmailStatus", f"EmailStatus {status!r} is not supported")
        d["EmailStatus"] = status
        d["PrintStatus"] = d.get("PrintStatus") or "NotSet"
        d.setdefault("CurrencyRef", {"value": "USD", "name": "United States Dollar"})
        d.setdefault("ApplyTaxAfterDiscount", False)
        d["TotalAmt"] = total
        d["Balance"] = total - applied
        d["RemainingCredit"] = d["Balance"]
        return d

    def _credit_applied(self, c: Company, memo_id: str) -> Decimal:
        return sum((self._credits_by(p).get(memo_id, ZERO) for p in c.all("Payment")), ZERO)

    def _recompute_credit_memos(self, c: Company, memo_ids: set[str], now: float) -> None:
        for memo_id in sorted(memo_ids):
            memo = c.get("CreditMemo", memo_id)
            if memo is None:
                continue
            balance = memo["TotalAmt"] - self._credit_applied(c, memo_id)
            if balance != memo["Balance"]:
                memo["Balance"] = balance
                memo["RemainingCredit"] = balance
                memo["SyncToken"] = str(int(memo["SyncToken"]) + 1)
                self.store.touch(c, "CreditMemo", memo, "Update", now)

    @staticmethod
    def _credits_by(payment: dict[str, Any] | None) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for line in (payment or {}).get("Line", []):
            for link in line.get("LinkedTxn", []):
                if link.get("TxnType") == "CreditMemo":
                    out[link["TxnId"]] = out.get(link["TxnId"], ZERO) + line["Amount"]
        return out

    # ---- Payment -----------------------------------------------------------------------------
    def _prepare_payment(self, c: Company, d: dict[str, Any], existing, params, now) -> dict[str, Any]:
        d["CustomerRef"] = self._customer_ref(c, d)
        total = _money(d.get("TotalAmt"), "TotalAmt", required=True)
        assert total is not None
        if total < 0:
            raise errors.business("Business Validation Error: TotalAmt cannot be negative.", "TotalAmt")
        already = self._applied_by(existing) if existing else {}
        already_credits = self._credits_by(existing) if existing else {}
        applied: dict[str, Decimal] = {}
        credits: dict[str, Decimal] = {}
        credit_total = ZERO
        lines = []
        for raw in d.get("Line") or []:
            line = dict(raw)
            amount = _money(line.get("Amount"), "Line.Amount", required=True)
            assert amount is not None
            links = line.get("LinkedTxn") or []
            if isinstance(links, dict):
                links = [links]
            for link in links:
                txn_type = link.get("TxnType")
                txn_id = str(link.get("TxnId"))
                if txn_type == "CreditMemo":  # applies that much of the credit memo (see CreditMemo)
                    memo = c.get("CreditMemo", txn_id)
                    if memo is None:
                        raise errors.invalid_reference("Line.LinkedTxn.TxnId", txn_id)
                    if memo["CustomerRef"]["value"] != d["CustomerRef"]["value"]:
                        raise errors.business(
                            f"Business Validation Error: Credit memo {txn_id} belongs to another customer.",
                            "Line.LinkedTxn",
                        )
                    credits[txn_id] = credits.get(txn_id, ZERO) + amount
                    credit_total += amount
                    continue
                if txn_type != "Invoice":
                    raise errors.invalid_property(
                        "Line.LinkedTxn.TxnType", f"TxnType {txn_type!r} not supported"
                    )
                invoice = c.get("Invoice", txn_id)
                if invoice is None:
                    raise errors.invalid_reference("Line.LinkedTxn.TxnId", txn_id)
                if invoice["CustomerRef"]["value"] != d["CustomerRef"]["value"]:
                    raise errors.business(
                        f"Business Validation Error: Invoice {txn_id} belongs to another customer.",
                        "Line.LinkedTxn",
                    )
                applied[txn_id] = applied.get(txn_id, ZERO) + amount
            line["Amount"] = amount
            line["LinkedTxn"] = [
                {"TxnId": str(lk.get("TxnId")), "TxnType": lk.get("TxnType")} for lk in links
            ]
            lines.append(line)
        for txn_id, amount in applied.items():
            invoice = c.get("Invoice", txn_id)
            assert invoice is not None
            open_balance = invoice["Balance"] + already.get(txn_id, ZERO)
            if amount > open_balance:
                raise errors.business(
                    f"Business Validation Error: The payment amount {amount} exceeds the open balance "
                    f"{open_balance} of invoice {txn_id}.",
                    "Line.Amount",
                )
        for txn_id, amount in credits.items():
            memo = c.get("CreditMemo", txn_id)
            assert memo is not None
            remaining = memo["Balance"] + already_credits.get(txn_id, ZERO)
            if amount > remaining:
                raise errors.business(
                    f"Business Validation Error: The amount {amount} applied from credit memo {txn_id} "
                    f"exceeds its remaining credit {remaining}.",
                    "Line.Amount",
                )
        # A credit memo's lines pay the invoice lines with credit instead of money.
        line_total = sum((ln["Amount"] for ln in lines), ZERO) - 2 * credit_total
        if line_total > total:
            raise errors.business(
                "Business Validation Error: The amount applied to transactions exceeds the payment amount.",
                "TotalAmt",
            )
        if d.get("TxnDate") == "":
            d.pop("TxnDate")
        _check_date(d, "TxnDate")
        d.setdefault("TxnDate", fmt_date(now, c.tz_offset))
        if _blank(d.get("DepositToAccountRef")):
            undeposited = next(a for a in c.entities["Account"].values() if a["Name"] == "Undeposited Funds")
            d["DepositToAccountRef"] = {"value": undeposited["Id"]}
        _check_len(d, "PrivateNote", 4000)
        d["TotalAmt"] = total
        d["Line"] = lines
        d["UnappliedAmt"] = total - line_total
        d.setdefault("ProcessPayment", False)
        d.setdefault("CurrencyRef", {"value": "USD", "name": "United States Dollar"})
        return d

    @staticmethod
    def _applied_by(payment: dict[str, Any] | None) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for line in (payment or {}).get("Line", []):
            for link in line.get("LinkedTxn", []):
                if link.get("TxnType") == "Invoice":
                    out[link["TxnId"]] = out.get(link["TxnId"], ZERO) + line["Amount"]
        return out

    # ---- side effects ------------------------------------------------------------------------
    def _after_save(self, c: Company, entity: str, record: dict[str, Any], existing, now: float) -> None:
        if entity == "Invoice":
            self._recompute_invoices(c, {record["Id"]}, now, touch=False)
            customers = {record["CustomerRef"]["value"]}
            if existing:
                customers.add(existing["CustomerRef"]["value"])
            self._recompute_customers(c, customers)
        elif entity == "Payment":
            invoices = set(self._applied_by(record)) | set(self._applied_by(existing))
            self._recompute_invoices(c, invoices, now, touch=True)
            self._recompute_credit_memos(
                c, set(self._credits_by(record)) | set(self._credits_by(existing)), now
            )
            self._recompute_customers(c, {record["CustomerRef"]["value"]})
        elif entity == "CreditMemo":
            customers = {record["CustomerRef"]["value"]}
            if existing:
                customers.add(existing["CustomerRef"]["value"])
            self._recompute_customers(c, customers)

    def _recompute_invoices(self, c: Company, invoice_ids: set[str], now: float, touch: bool) -> None:
        for inv_id in sorted(invoice_ids):
            invoice = c.get("Invoice", inv_id)
            if invoice is None:
                continue
            paid = ZERO
            links = []
            for payment in c.all("Payment"):
                amount = self._applied_by(payment).get(inv_id)
                if amount is not None:
                    paid += amount
                    links.append({"TxnId": payment["Id"], "TxnType": "Payment"})
            balance = invoice["TotalAmt"] - paid
            if balance != invoice["Balance"] or links != invoice.get("LinkedTxn", []):
                invoice["Balance"] = balance
                invoice["LinkedTxn"] = links
                self.store.mark(c, "Invoice", inv_id)  # changed even when not touched
                if touch:
                    invoice["SyncToken"] = str(int(invoice["SyncToken"]) + 1)
                    self.store.touch(c, "Invoice", invoice, "Update", now)

    def _recompute_customers(self, c: Company, customer_ids: set[str]) -> None:
        for cust_id in customer_ids:
            customer = c.get("Customer", cust_id)
            if customer is None:
                continue
            balance = sum(
                (
                    inv["Balance"]
                    for inv in c.entities["Invoice"].values()
                    if inv["CustomerRef"]["value"] == cust_id
                ),
                ZERO,
            ) - sum(  # the customer's unapplied credit is owed back: it lowers the open balance
                (
                    memo["Balance"]
                    for memo in c.entities["CreditMemo"].values()
                    if memo["CustomerRef"]["value"] == cust_id
                ),
                ZERO,
            )
            customer["Balance"] = balance
            customer["BalanceWithJobs"] = balance
            self.store.mark(c, "Customer", cust_id)  # a balance changes without a change event

    def _unlink_payments(self, c: Company, inv_id: str, now: float, txn_type: str = "Invoice") -> None:
        """Deleting or voiding an invoice (or a credit memo) leaves its payments unapplied (as
        QuickBooks does); credit applied to an invoice that is gone is free again."""
        memos: set[str] = set()
        for payment in c.all("Payment"):
            links = self._applied_by(payment) if txn_type == "Invoice" else self._credits_by(payment)
            if inv_id not in links:
                continue
            kept = []
            for line in payment["Line"]:
                if any(
                    lk.get("TxnId") == inv_id and lk.get("TxnType") == txn_type for lk in line["LinkedTxn"]
                ):
                    continue
                kept.append(line)
            payment["Line"] = kept
            credited = sum(self._credits_by(payment).values(), ZERO)
            if credited > sum(self._applied_by(payment).values(), ZERO):
                memos |= set(self._credits_by(payment))
                payment["Line"] = kept = [
                    ln for ln in kept if not any(lk.get("TxnType") == "CreditMemo" for lk in ln["LinkedTxn"])
                ]
            credited = sum(self._credits_by(payment).values(), ZERO)
            invoiced = sum(self._applied_by(payment).values(), ZERO)
            payment["UnappliedAmt"] = payment["TotalAmt"] - (invoiced - credited)
            payment["SyncToken"] = str(int(payment["SyncToken"]) + 1)
            self.store.touch(c, "Payment", payment, "Update", now)
            if txn_type == "CreditMemo":
                self._recompute_invoices(c, set(self._applied_by(payment)), now, touch=True)
        self._recompute_credit_memos(c, memos - {inv_id}, now)

    # ---- delete / void -----------------------------------------------------------------------
    def _existing_for_op(self, c: Company, entity: str, body: Any, as_user: bool) -> dict[str, Any]:
        if not isinstance(body, dict) or _blank(body.get("Id")):
            raise errors.required("Id")
        existing = c.get(entity, body["Id"])
        if existing is None:
            raise errors.not_found(entity, body["Id"])
        if not as_user:
            self._check_sync_token(entity, existing, body)
        return existing

    def delete(self, c: Company, entity: str, body: Any, as_user: bool = False) -> dict[str, Any]:
        if entity not in DELETABLE:
            raise errors.unsupported(
                f"Operation Delete is not supported for {entity}; make it inactive (Active=false) instead."
            )
        with self.store.lock:
            now = self.clock.now()
            existing = self._existing_for_op(c, entity, body, as_user)
            id_ = existing["Id"]
            if entity in ("Invoice", "CreditMemo"):
                self._unlink_payments(c, id_, now, entity)
            del c.entities[entity][id_]
            c.tombstones[entity][id_] = now
            c.mtime[(entity, id_)] = now
            if entity in ("Invoice", "CreditMemo"):
                self._recompute_customers(c, {existing["CustomerRef"]["value"]})
            else:
                self._recompute_invoices(c, set(self._applied_by(existing)), now, touch=True)
                self._recompute_credit_memos(c, set(self._credits_by(existing)), now)
                self._recompute_customers(c, {existing["CustomerRef"]["value"]})
            self.store.notify(c.realm_id, entity, id_, "Delete", now)
            return {entity: {"domain": "QBO", "status": "Deleted", "Id": id_}}

    def void(self, c: Company, entity: str, body: Any, as_user: bool = False) -> dict[str, Any]:
        if entity not in VOIDABLE:
            raise errors.unsupported(f"Operation Void is not supported for {entity}.")
        with self.store.lock:
            now = self.clock.now()
            existing = self._existing_for_op(c, entity, body, as_user)
            id_ = existing["Id"]
            record = existing
            if entity in ("Invoice", "CreditMemo"):
                self._unlink_payments(c, id_, now, entity)
                for line in record["Line"]:
                    line["Amount"] = ZERO
                    if "SalesItemLineDetail" in line:
                        line["SalesItemLineDetail"].pop("Qty", None)
                        line["SalesItemLineDetail"].pop("UnitPrice", None)
                record.setdefault("TxnTaxDetail", {})["TotalTax"] = ZERO
                record["TotalAmt"] = ZERO
                record["Balance"] = ZERO
                record["LinkedTxn"] = []
                if entity == "CreditMemo":
                    del record["LinkedTxn"]
                    record["RemainingCredit"] = ZERO
            else:
                affected = set(self._applied_by(record))
                affected_memos = set(self._credits_by(record))
                record["TotalAmt"] = ZERO
                record["UnappliedAmt"] = ZERO
                record["Line"] = []
            c.voided.add((entity, id_))
            record["PrivateNote"] = "Voided"
            record["SyncToken"] = str(int(record["SyncToken"]) + 1)
            self.store.touch(c, entity, record, "Void", now)
            if entity == "Payment":
                self._recompute_invoices(c, affected, now, touch=True)
                self._recompute_credit_memos(c, affected_memos, now)
            self._recompute_customers(c, {record["CustomerRef"]["value"]})
            return {entity: copy.deepcopy(record)}

    # ---- send ----------------------------------------------------------------------------------------
    # Intuit Accounting API reference, Invoice (and CreditMemo) "Send": POST /v3/company/<realm>/
    # invoice/<id>/send?sendTo=<address> (Content-Type application/octet-stream, no body). QuickBooks
    # emails the form; sendTo, when given, replaces BillEmail.Address; without one BillEmail is used.
    # The answer is the entity with EmailStatus "EmailSent" and DeliveryInfo {DeliveryType "Email",
    # DeliveryTime}; the change is an update (SyncToken + 1) and its webhook operation is "Emailed".

    def send(self, c: Company, entity: str, id_: str, send_to: str | None) -> dict[str, Any]:
        if entity not in SENDABLE:
            raise errors.unsupported(f"Operation Send is not supported for {entity}.")
        with self.store.lock:
            now = self.clock.now()
            record = c.get(entity, id_)
            if record is None:
                raise errors.not_found(entity, id_)
            if send_to is not None:
                if not EMAIL_RE.match(send_to):
                    raise errors.invalid_property("sendTo", f"Invalid email address: {send_to}")
                record["BillEmail"] = {"Address": send_to}
            address = (record.get("BillEmail") or {}).get("Address")
            if _blank(address):
                raise errors.business(
                    "Business Validation Error: Need to specify a BillEmail address (or sendTo) to send.",
                    "BillEmail",
                )
            record["EmailStatus"] = "EmailSent"
            stamp = fmt_time(now, c.tz_offset)
            record["DeliveryInfo"] = {"DeliveryType": "Email", "DeliveryTime": stamp}
            record["SyncToken"] = str(int(record["SyncToken"]) + 1)
            c.sent.append({"entity": entity, "Id": id_, "to": address, "at": stamp})
            self.store.touch(c, entity, record, "Emailed", now)
            return {entity: copy.deepcopy(record)}


class QboAmountFault(errors.QboFault):
    def __init__(self, amount: Decimal, qty: Decimal, price: Decimal) -> None:
        super().__init__(
            6070,
            "Amount calculation incorrect in the request",
            f"Amount is not equal to UnitPrice * Qty. Supplied value:{amount}, expected "
            f"{round_money(qty * price)} ({qty} x {price})",
            "Line.Amount",
        )
