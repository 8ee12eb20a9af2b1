"""In-memory, thread-safe company data. All mutation happens under ``Store.lock``."""

from __future__ import annotations

import copy
import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .clock import Clock, fmt_time

ENTITY_TYPES = ("Account", "TaxCode", "Customer", "Item", "Invoice", "Payment", "CreditMemo")
SINGLETONS = ("Preferences", "CompanyInfo")

# (realm, entity name, id, operation, emulated ts)
ChangeListener = Callable[[str, str, str, str, float], None]


@dataclass
class Company:
    realm_id: str
    name: str
    custom_txn_numbers: bool
    tz_offset: int
    entities: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    mtime: dict[tuple[str, str], float] = field(default_factory=dict)
    tombstones: dict[str, dict[str, float]] = field(default_factory=dict)
    next_id: Counter = field(default_factory=Counter)
    next_doc_number: int = 1001
    requestids: dict[str, tuple[float, int, str, str]] = field(default_factory=dict)
    singletons: dict[str, dict[str, Any]] = field(default_factory=dict)
    voided: set[tuple[str, str]] = field(default_factory=set)
    calls: Counter = field(default_factory=Counter)
    by_status: Counter = field(default_factory=Counter)
    # US automated sales tax (AST): QuickBooks computes the tax of TAX lines from the customer's
    # location (reference §4). Off by default, as on a sandbox company. Rates in percent, keyed by
    # postal code or state (CountrySubDivisionCode): the emulator's stand-in for Intuit's tax engine.
    automated_sales_tax: bool = False
    tax_rates: dict[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for t in ENTITY_TYPES:
            self.entities.setdefault(t, {})
            self.tombstones.setdefault(t, {})

    def all(self, entity: str) -> list[dict[str, Any]]:
        return sorted(self.entities[entity].values(), key=lambda e: _id_key(e["Id"]))

    def get(self, entity: str, id_: Any) -> dict[str, Any] | None:
        return self.entities[entity].get(str(id_))

    def new_id(self, entity: str) -> str:
        self.next_id[entity] += 1
        return str(self.next_id[entity])


def parse_tax_rates(rates: dict[str, Any]) -> dict[str, Decimal]:
    """{location: percent}: keys upper-cased (a state code or a postal code), values exact decimals."""
    out = {}
    for key, value in rates.items():
        rate = Decimal(str(value))
        if rate < 0 or rate >= 100:
            raise ValueError(f"tax rate of {key} must be a percent in [0, 100), got {value}")
        out[str(key).strip().upper()] = rate
    return out


def _id_key(id_: str) -> tuple[int, Any]:
    return (0, int(id_)) if id_.isdigit() else (1, id_)


@dataclass
class Changes:
    """What changed since the last take_changes(): the persistence hook writes exactly these."""

    companies: set[str] = field(default_factory=set)
    entities: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    requestids: dict[str, set[str]] = field(default_factory=dict)


class Store:
    def __init__(self, clock: Clock, seed: int = 0) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.companies: dict[str, Company] = {}
        self._rng = random.Random(seed)
        self._listeners: list[ChangeListener] = []
        self._changes: Changes | None = None  # None: nothing persists, nothing is tracked

    # ---- change tracking (local/qbo_emulator/persist.py) -------------------------------------
    def track_changes(self) -> None:
        with self.lock:
            self._changes = Changes()

    def take_changes(self) -> Changes:
        with self.lock:
            changes, self._changes = self._changes or Changes(), Changes()
            return changes

    def mark(self, company: Company, entity: str, id_: str) -> None:
        """Record that an entity changed (caller holds the lock); `touch` and deletes do it already."""
        if self._changes is not None:
            self._changes.companies.add(company.realm_id)
            self._changes.entities.setdefault(company.realm_id, set()).add((entity, str(id_)))

    def remember_request(
        self, company: Company, request_id: str, answer: tuple[float, int, str, str]
    ) -> None:
        """Keep a request's answer for `requestid` replay (caller holds the lock)."""
        company.requestids[request_id] = answer
        if self._changes is not None:
            self._changes.companies.add(company.realm_id)
            self._changes.requestids.setdefault(company.realm_id, set()).add(request_id)

    # ---- companies ---------------------------------------------------------------------------
    def new_realm_id(self) -> str:
        with self.lock:
            while True:
                realm = str(self._rng.randrange(9130_3500_0000_0000, 9130_3599_9999_9999))
                if realm not in self.companies:
                    return realm

    def create_company(
        self,
        realm_id: str | None = None,
        name: str = "Demo Pool Co",
        custom_txn_numbers: bool = False,
        tz_offset: int = -420,
        automated_sales_tax: bool = False,
        tax_rates: dict[str, Any] | None = None,
    ) -> Company:
        with self.lock:
            realm = realm_id or self.new_realm_id()
            if realm in self.companies:
                raise ValueError(f"company {realm} exists")
            company = Company(realm, name, custom_txn_numbers, tz_offset)
            company.automated_sales_tax = automated_sales_tax
            company.tax_rates = parse_tax_rates(tax_rates or {})
            self.companies[realm] = company
            seed_company(company, self.clock.now())
            return company

    def set_preferences(
        self,
        company: Company,
        custom_txn_numbers: bool | None = None,
        automated_sales_tax: bool | None = None,
        tax_rates: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Change the company's settings as its user would in QuickBooks; returns the Preferences."""
        with self.lock:
            prefs = company.singletons["Preferences"]
            if custom_txn_numbers is not None:
                company.custom_txn_numbers = bool(custom_txn_numbers)
                prefs["SalesFormsPrefs"]["CustomTxnNumbers"] = company.custom_txn_numbers
            if automated_sales_tax is not None:
                company.automated_sales_tax = bool(automated_sales_tax)
                prefs["TaxPrefs"]["PartnerTaxEnabled"] = company.automated_sales_tax
            if tax_rates is not None:
                company.tax_rates = parse_tax_rates(tax_rates)
            prefs["SyncToken"] = str(int(prefs["SyncToken"]) + 1)
            if self._changes is not None:
                self._changes.companies.add(company.realm_id)
            return prefs

    def company(self, realm: str) -> Company | None:
        return self.companies.get(realm)

    # ---- change feed (webhooks) --------------------------------------------------------------
    def add_listener(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)

    def touch(self, company: Company, entity: str, record: dict[str, Any], operation: str, ts: float) -> None:
        """Stamp MetaData.LastUpdatedTime and notify listeners (caller holds the lock)."""
        meta = record.setdefault("MetaData", {})
        stamp = fmt_time(ts, company.tz_offset)
        meta.setdefault("CreateTime", stamp)
        meta["LastUpdatedTime"] = stamp
        company.mtime[(entity, record["Id"])] = ts
        self.notify(company.realm_id, entity, record["Id"], operation, ts)

    def notify(self, realm: str, entity: str, id_: str, operation: str, ts: float) -> None:
        company = self.companies.get(realm)
        if company is not None:
            self.mark(company, entity, id_)
        for listener in self._listeners:
            listener(realm, entity, id_, operation, ts)

    def snapshot(self, realm: str) -> dict[str, Any]:
        with self.lock:
            c = self.companies[realm]
            return copy.deepcopy(
                {
                    "realmId": c.realm_id,
                    "CompanyName": c.name,
                    "entities": {t: c.all(t) for t in ENTITY_TYPES},
                    "deleted": {t: sorted(ids, key=_id_key) for t, ids in c.tombstones.items() if ids},
                    "Preferences": c.singletons["Preferences"],
                    "CompanyInfo": c.singletons["CompanyInfo"],
                }
            )


SEED_ACCOUNTS = [
    ("Services", "Income", "ServiceFeeIncome"),
    ("Sales of Product Income", "Income", "SalesOfProductIncome"),
    ("Pool Service Income", "Income", "ServiceFeeIncome"),
    ("Cost of Goods Sold", "Cost of Goods Sold", "SuppliesMaterialsCogs"),
    ("Chemicals", "Expense", "SuppliesMaterials"),
    ("Pool Supplies", "Expense", "SuppliesMaterials"),
    ("Inventory Asset", "Other Current Asset", "Inventory"),
    ("Accounts Receivable (A/R)", "Accounts Receivable", "AccountsReceivable"),
    ("Undeposited Funds", "Other Current Asset", "UndepositedFunds"),
    ("Checking", "Bank", "Checking"),
]

CLASSIFICATION = {
    "Income": "Revenue",
    "Other Income": "Revenue",
    "Expense": "Expense",
    "Other Expense": "Expense",
    "Cost of Goods Sold": "Expense",
    "Bank": "Asset",
    "Other Current Asset": "Asset",
    "Accounts Receivable": "Asset",
    "Fixed Asset": "Asset",
    "Other Asset": "Asset",
    "Accounts Payable": "Liability",
    "Credit Card": "Liability",
    "Other Current Liability": "Liability",
    "Long Term Liability": "Liability",
    "Equity": "Equity",
}


def seed_company(c: Company, ts: float) -> None:
    stamp = fmt_time(ts, c.tz_offset)
    meta = {"CreateTime": stamp, "LastUpdatedTime": stamp}
    for name, acct_type, sub_type in SEED_ACCOUNTS:
        id_ = c.new_id("Account")
        c.entities["Account"][id_] = {
            "Id": id_,
            "SyncToken": "0",
            "Name": name,
            "FullyQualifiedName": name,
            "SubAccount": False,
            "Active": True,
            "Classification": CLASSIFICATION[acct_type],
            "AccountType": acct_type,
            "AccountSubType": sub_type,
            "CurrentBalance": Decimal(0),
            "CurrentBalanceWithSubAccounts": Decimal(0),
            "CurrencyRef": {"value": "USD", "name": "United States Dollar"},
            "domain": "QBO",
            "sparse": False,
            "MetaData": dict(meta),
        }
        c.mtime[("Account", id_)] = ts
    for code, taxable in (("TAX", True), ("NON", False)):
        c.entities["TaxCode"][code] = {
            "Id": code,
            "SyncToken": "0",
            "Name": code,
            "Description": "Taxable" if taxable else "Non-taxable",
            "Active": True,
            "Taxable": taxable,
            "TaxGroup": False,
            "domain": "QBO",
            "sparse": False,
            "MetaData": dict(meta),
        }
        c.mtime[("TaxCode", code)] = ts
    c.singletons["Preferences"] = {
        "Id": "1",
        "SyncToken": "0",
        "AccountingInfoPrefs": {"TrackDepartments": False, "ClassTrackingPerTxn": False},
        "SalesFormsPrefs": {
            "CustomTxnNumbers": c.custom_txn_numbers,
            "AllowDeposit": True,
            "AllowDiscount": True,
            "DefaultTerms": {"value": "3"},
            "ETransactionEnabledStatus": "NotApplicable",
        },
        "TaxPrefs": {"UsingSalesTax": True, "PartnerTaxEnabled": c.automated_sales_tax},
        "CurrencyPrefs": {"MultiCurrencyEnabled": False, "HomeCurrency": {"value": "USD"}},
        "OtherPrefs": {"NameValue": [{"Name": "SalesFormsPrefs.DefaultItem", "Value": "1"}]},
        "domain": "QBO",
        "sparse": False,
        "MetaData": dict(meta),
    }
    c.singletons["CompanyInfo"] = {
        "Id": "1",
        "SyncToken": "0",
        "CompanyName": c.name,
        "LegalName": c.name,
        "Country": "US",
        "CompanyAddr": {"Line1": "123 Main Street", "City": "Mountain View", "CountrySubDivisionCode": "CA"},
        "SupportedLanguages": "en",
        "CompanyStartDate": stamp[:10],
        "domain": "QBO",
        "sparse": False,
        "MetaData": dict(meta),
    }
