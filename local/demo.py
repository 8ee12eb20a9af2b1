"""`make demo`: a pool-service company's month of field work, billed and synced to QuickBooks.

Everything goes through the real pieces: the HTTP API (local gateway, JWT), the OAuth flow against
the QuickBooks emulator, the billing-run state machine on moto, and the throttled sync queue.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import requests

from local.stack import LocalStack, StackOptions

TENANT = "demo-pool-co"
FIRST = [
    "Avery",
    "Blake",
    "Casey",
    "Devon",
    "Emerson",
    "Finley",
    "Greer",
    "Harper",
    "Indy",
    "Jordan",
    "Kendall",
    "Logan",
    "Morgan",
    "Noel",
    "Oakley",
    "Parker",
    "Quinn",
    "Reese",
    "Sawyer",
    "Taylor",
    "Umber",
    "Vale",
    "Wren",
    "Xen",
    "Yael",
    "Zion",
]
LAST = ["Hughes", "Patel", "Okafor", "Larsen", "Moreau", "Santos", "Kowalski", "Nguyen", "Fischer", "Romero"]
TASKS = [
    ("Weekly pool service", Decimal("85.00")),
    ("Filter clean", Decimal("120.00")),
    ("Pump repair", Decimal("140.00")),
    ("Green pool recovery", Decimal("95.00")),
]


class Api:
    def __init__(self, base: str, token: str):
        self.base = base
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.calls = 0

    def call(
        self, method: str, path: str, body: Any = None, expect: tuple[int, ...] = (200, 201, 202)
    ) -> Any:
        self.calls += 1
        response = self.session.request(method, self.base + path, json=body, timeout=60)
        if response.status_code not in expect:
            raise SystemExit(f"{method} {path} -> {response.status_code}: {response.text}")
        return response.json()


def stage(message: str, started: float) -> None:
    print(f"[{time.monotonic() - started:6.1f}s] {message}", flush=True)


def connect_quickbooks(stack: LocalStack, api: Api) -> str:
    realm = stack.emulator.create_company(name="Blue Lagoon Pools (QuickBooks)")
    url = api.call("GET", "/quickbooks/connect")["authorization_url"]
    consent = requests.get(url + f"&realm={realm}", allow_redirects=False, timeout=30)  # the browser leg
    # back to our callback with the connect cookie /quickbooks/connect set, as the browser would
    callback = requests.get(consent.headers["Location"], cookies=api.session.cookies, timeout=30)
    if callback.status_code != 200:
        raise SystemExit(f"OAuth callback failed: {callback.status_code} {callback.text}")
    # The setup step: default accounts picked from the company's live lists.
    income = api.call("GET", "/quickbooks/accounts?type=Income")["items"]
    expense = api.call("GET", "/quickbooks/accounts?type=Expense")["items"]
    api.call(
        "PUT",
        "/quickbooks/settings",
        {
            "default_income_account": next(a["id"] for a in income if a["name"] == "Pool Service Income"),
            "default_expense_account": next(a["id"] for a in expense if a["name"] == "Chemicals"),
            "custom_txn_numbers": False,
            "automated_tax": True,
        },
    )
    return realm


def seed(api: Api, customers: int, month_start: datetime, rng: random.Random) -> dict[str, int]:
    counts = {"contacts": 0, "tasks": 0, "time": 0, "mileage": 0, "goods": 0}
    for n in range(customers):
        name = f"{FIRST[n % len(FIRST)]} {LAST[(n * 7) % len(LAST)]}"
        contact_id = f"cust-{n + 1:03d}"
        api.call(
            "POST",
            "/contacts",
            {
                "id": contact_id,
                "name": name,
                "email": f"{contact_id}@example.com",
                "tags": ["residential" if n % 4 else "commercial"],
            },
        )
        counts["contacts"] += 1
        for t in range(1 + n % 2):
            title, rate = TASKS[(n + t) % len(TASKS)]
            task_id = f"{contact_id}-task-{t + 1}"
            api.call(
                "POST",
                "/tasks",
                {
                    "id": task_id,
                    "title": title,
                    "client_contact_id": contact_id,
                    "billable": True,
                    "status": "done",
                    "unit": "hour",
                    "unit_price": str(rate),
                },
            )
            counts["tasks"] += 1
            for visit in range(rng.randint(3, 5)):
                day = month_start + timedelta(days=rng.randint(0, 27), hours=8 + rng.randint(0, 8))
                minutes = rng.choice([30, 45, 60, 75, 90, 120])
                api.call(
                    "POST",
                    f"/tasks/{task_id}/entries",
                    {
                        "kind": "time",
                        "description": f"{title} visit {visit + 1}",
                        "started_at": day.isoformat(),
                        "stopped_at": (day + timedelta(minutes=minutes)).isoformat(),
                    },
                )
                counts["time"] += 1
                if rng.random() < 0.6:
                    api.call(
                        "POST",
                        f"/tasks/{task_id}/entries",
                        {
                            "kind": "mileage",
                            "description": "Drive to site",
                            "started_at": day.isoformat(),
                            "distance_km": str(Decimal(rng.randint(40, 350)) / 10),
                            "transport_minutes": str(rng.choice([0, 15, 20, 30])),
                        },
                    )
                    counts["mileage"] += 1
            if rng.random() < 0.5:
                api.call(
                    "POST",
                    f"/tasks/{task_id}/entries",
                    {
                        "kind": "goods",
                        "description": "Chlorine tablets (bucket)",
                        "started_at": (month_start + timedelta(days=rng.randint(0, 27))).isoformat(),
                        "quantity": str(rng.randint(1, 3)),
                        "unit_price": "64.99",
                    },
                )
                counts["goods"] += 1
    return counts


# ---------------------------------------------------------------------------- a job-shop job (issue 14)
def bill_job(api: Api, started: float) -> list[str]:
    """One job billed over its life: deposit -> progress -> close -> complete (nets the deposit) ->
    a credit correction; the invoice ids, in that order."""
    api.call("POST", "/products", {"id": "job-brochure", "name": "Printed brochure"})
    api.call(
        "POST",
        "/products",
        {"id": "job-alteration", "name": "Author alteration", "default_unit_price": "50.00"},
    )
    job = api.call(
        "POST",
        "/jobs",
        {
            "id": "job-spring-brochure",
            "name": "Spring brochure",
            "customer_id": "cust-001",
            "billing_type": "order_items",
            "invoiceables": [
                {"id": "brochures", "kind": "order_item", "product_id": "job-brochure", "quantity": "1000",
                 "unit_price": "1.25", "description": "Brochures, 8 pages"},
                {"id": "alteration", "kind": "charge", "product_id": "job-alteration", "quantity": "1",
                 "charge_kind": "customer_alteration", "category": "Alterations",
                 "description": "Text change"},
            ],
        },
    )  # fmt: skip
    path = f"/jobs/{job['id']}/invoices"
    deposit = api.call("POST", path, {"policy": "deposit", "amount": "400.00"})
    progress = api.call("POST", path, {"policy": "progress_summary", "percent": "40"})
    api.call("POST", f"/jobs/{job['id']}/close", {})
    complete = api.call("POST", path, {"policy": "complete"})
    correction = api.call("POST", path, {"policy": "correction", "items": {"brochures": "-50.00"}})
    job = api.call("GET", f"/jobs/{job['id']}")
    stage(
        f"job {job['id']} ({job['suggested_price']}): deposit {deposit['total']}, "
        f"progress {progress['total']}, complete {complete['total']} (deposit netted), "
        f"correction {correction['total']}; status {job['status']}, remaining {job['remaining']}",
        started,
    )
    return [deposit["id"], progress["id"], complete["id"], correction["id"]]


# ---- issue 17: the pool company's completed services, billed from the billing page
SERVICE_CUSTOMERS = 8


def seed_services(api: Api, month_start: datetime, rng: random.Random) -> dict[str, int]:
    """Two service types with different billing methods (weekly cleaning at a fixed price with a
    trip fee; equipment repair by the hour per worker, rounded up to 15 minutes, 1 hour minimum),
    inventory used, one customer with a special price, one unbillable visit."""
    api.call("PUT", "/billing-settings", {"default_invoice_type": "qbo", "default_terms_days": 30})
    for worker in ("Ana", "Ben", "Cy"):
        api.call("POST", "/workers", {"id": worker.lower(), "name": worker})
    api.call(
        "POST",
        "/inventory-items",
        {"id": "chlorine", "name": "Chlorine tabs", "price": "12.00", "taxable": True},
    )
    api.call(
        "POST", "/service-types", {"id": "trip", "name": "Trip fee", "price": "15.00", "is_trip_fee": True}
    )
    api.call(
        "POST",
        "/service-types",
        {
            "id": "weekly",
            "name": "Weekly cleaning",
            "billing_method": "fixed",
            "price": "85.00",
            "trip_fee_id": "trip",
        },
    )
    api.call(
        "POST",
        "/service-types",
        {
            "id": "repair",
            "name": "Equipment repair",
            "billing_method": "hourly_per_worker",
            "price": "60.00",
            "taxable": True,
            "round_up_minutes": 15,
            "minimum_hours": "1",
        },
    )
    api.call("PUT", "/contacts/cust-002/prices/weekly", {"unit_price": "70.00"})  # a special price
    counts = {"visits": 0, "unbillable": 0}
    for n in range(SERVICE_CUSTOMERS):
        contact_id = f"cust-{n + 1:03d}"
        for week in range(4):
            day = month_start + timedelta(days=7 * week + n % 5, hours=9)
            repair = week == 2 and n % 3 == 0
            body: dict[str, Any] = {
                "id": f"svc-{contact_id}-{week + 1}",
                "contact_id": contact_id,
                "service_date": day.date().isoformat(),
                "started_at": day.isoformat(),
                "ended_at": (day + timedelta(minutes=rng.choice([35, 50, 70, 95]))).isoformat(),
                "service_type_id": "repair" if repair else "weekly",
                "worker_ids": ["ana", "ben"] if repair else [("ana", "ben", "cy")[n % 3]],
                "completed": True,
            }
            if week == 1 and n % 2 == 0:
                body["inventory"] = [{"item_id": "chlorine", "quantity": str(1 + n % 3)}]
            if n == 3 and week == 3:
                body["billing_status"] = "unbillable"  # a courtesy visit, never invoiced
                counts["unbillable"] += 1
            api.call("POST", "/services", body)
            counts["visits"] += 1
    return counts


def print_billing_view(api: Api) -> None:
    view = api.call("GET", "/billing?limit=50")
    unbillable = api.call("GET", "/billing?billing_status=unbillable")
    print()
    print(f"{'Billing page: customer':<24} {'services':>8} {'total':>10}  badges / types")
    print("-" * 72)
    for customer in view["customers"] + unbillable["customers"]:
        badges = sorted({s["badge"] for s in customer["services"]})
        types = sorted({s["service_type"] for s in customer["services"]})
        print(
            f"{customer['name']:<24} {len(customer['services']):>8} {customer['total']:>10}  "
            f"{'/'.join(badges)} {', '.join(types)}"
        )
    print("-" * 72)
    print(f"{view['services']} billable services, total {view['total']}; {unbillable['services']} unbillable")
    print()


def run_demo(customers: int = 24, seconds_per_minute: float = 2.0) -> int:
    started = time.monotonic()
    rng = random.Random(20261122)
    stage(
        "starting the embedded stack (moto from template.yaml, local gateway, QuickBooks emulator)", started
    )
    with LocalStack(
        StackOptions(
            seconds_per_minute=seconds_per_minute, poll_seconds=1, log_level="WARNING", metrics=False
        )
    ) as stack:
        api = Api(stack.api_url, stack.token(TENANT))
        stage(f"stack up: API {stack.api_url}, QuickBooks emulator {stack.emulator.url}", started)
        realm = connect_quickbooks(stack, api)
        status = api.call("GET", "/quickbooks/connection")
        stage(
            f"QuickBooks connected through OAuth: {status.get('company_name') or realm} (realm {realm}), "
            f"status {status['status']}, default accounts chosen",
            started,
        )
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        month_start = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
        counts = seed(api, customers, month_start, rng)
        stage(
            f"seeded {counts['contacts']} customers, {counts['tasks']} tasks, {counts['time']} time, "
            f"{counts['mileage']} mileage and {counts['goods']} goods entries for {month_start:%B %Y}",
            started,
        )
        service_counts = seed_services(api, month_start, rng)
        stage(
            f"seeded {service_counts['visits']} completed pool services for {SERVICE_CUSTOMERS} customers "
            f"({service_counts['unbillable']} unbillable); the billing page before invoicing:",
            started,
        )
        print_billing_view(api)
        bulk = api.call("POST", "/billing/invoices", {"issue_date": today.date().isoformat()})
        while (op := api.call("GET", f"/operations/{bulk['operation_id']}"))["status"] not in (
            "succeeded",
            "failed",
        ):
            time.sleep(0.3)
        result = op.get("result") or {}
        stage(
            f"billing page bulk invoices: {result.get('invoices', 0)} invoices for "
            f"{result.get('invoiced', 0)} customers, {result.get('failed', 0)} failed ({op['status']})",
            started,
        )
        run = api.call("POST", "/billing-runs", {"grouping": "per_contact"})
        stage(f"billing run {run['id']} started (Step Functions execution on moto)", started)
        last = None
        while True:
            run = api.call("GET", f"/billing-runs/{run['id']}")
            progress = (
                run["stage"],
                run["counts"].get("items_created"),
                run["counts"].get("invoices_created"),
                str(run["counts"].get("sync")),
            )
            if progress != last:
                sync = run["counts"].get("sync") or {}
                waiting = sync.get("pending", 0) + sync.get("not_synced", 0)
                stage(
                    f"run stage {run['stage']}: items {run['counts'].get('items_created', 0)}, invoices "
                    f"{run['counts'].get('invoices_created', 0)}, synced {sync.get('synced', 0)}, "
                    f"waiting {waiting}, errors {sync.get('error', 0)}",
                    started,
                )
                last = progress
            if run["stage"] == "finished":
                break
            if time.monotonic() - started > 600:
                raise SystemExit("the billing run did not finish within 10 minutes")
            time.sleep(0.5)
        job_invoices = bill_job(api, started)
        printed = api.call("POST", "/invoices/print", {"invoice_ids": job_invoices})
        stage(
            f"the job's {printed['invoice_count']} invoices printed as one PDF "
            f"({printed['size_bytes']} bytes)",
            started,
        )

        def job_invoices_settled() -> bool:
            found = api.call("GET", "/invoices?job_id=job-spring-brochure&limit=50")["items"]
            return all(i["sync_status"] == "synced" for i in found if Decimal(i["total"]) >= 0)

        while not job_invoices_settled():
            if time.monotonic() - started > 600:
                raise SystemExit("the job's invoices did not reach QuickBooks within 10 minutes")
            time.sleep(0.5)
        # Its invoice is in QuickBooks now: posting the correction credits it there (a CreditMemo).
        posted = api.call("POST", f"/invoices/{job_invoices[-1]}/post", {})
        while not stack.emulator.entities(realm, "CreditMemo"):
            if time.monotonic() - started > 600:
                raise SystemExit("the job's credit memo did not reach QuickBooks within 10 minutes")
            time.sleep(0.5)
        stage(
            f"correction posted: QuickBooks credit memo on invoice {posted['credit_target_id']} "
            f"({len(stack.emulator.entities(realm, 'CreditMemo'))} credit memo in QuickBooks)",
            started,
        )
        invoices = []
        deadline = time.monotonic() + 120
        while True:  # the billing page's invoices sync through the same queue: wait for them too
            invoices, cursor = [], None
            while True:
                page = api.call("GET", "/invoices?limit=200" + (f"&cursor={cursor}" if cursor else ""))
                invoices += page["items"]
                cursor = page["next_cursor"]
                if not cursor:
                    break
            # (a negative job correction is a credit memo there, counted below, not an invoice)
            settled = [i["sync_status"] in ("synced", "error") for i in invoices if Decimal(i["total"]) >= 0]
            if all(settled) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        contacts = {c["id"]: c["name"] for c in api.call("GET", "/contacts?limit=200")["items"]}
        print()
        print(
            f"{'customer':<22} {'invoice':>8} {'lines':>5} {'total':>10}  {'badge':<7} {'QuickBooks id':>13}"
        )
        print("-" * 72)
        for inv in sorted(invoices, key=lambda i: contacts.get(i["contact_id"], "")):
            name = contacts.get(inv["contact_id"], inv["contact_id"])
            number, qbo_id = inv.get("qbo_doc_number") or "-", inv.get("qbo_id") or "-"
            print(
                f"{name:<22} {number:>8} {len(inv['lines']):>5} {inv['total']:>10}  "
                f"{inv['badge']:<7} {qbo_id:>13}"
            )
        total = sum(Decimal(i["total"]) for i in invoices)
        in_qbo = stack.emulator.entities(realm, "Invoice")
        # A negative job correction is a credit memo in QuickBooks, not an invoice.
        credits = [i for i in invoices if Decimal(i["total"]) < 0]
        invoices = [i for i in invoices if Decimal(i["total"]) >= 0]
        synced = [i for i in invoices if i["sync_status"] == "synced"]
        print("-" * 72)
        print(
            f"{len(invoices)} invoices, {sum(len(i['lines']) for i in invoices)} lines, total {total}; "
            f"{len(synced)} synced; QuickBooks holds {len(in_qbo)} invoices; run status {run['status']}"
            f"; {len(credits)} job correction(s) as credit"
        )
        ok = (
            run["status"] == "succeeded"
            and op["status"] == "succeeded"
            and not result.get("failed")
            and invoices
            and len(synced) == len(invoices)
            and len(in_qbo) == len(invoices)
            # every negative job correction is exactly one credit memo there
            and len(stack.emulator.entities(realm, "CreditMemo")) == len(credits)
        )
        ok = recurring_block(api, list(contacts)[:3], today, started) and ok
        stage(f"done ({api.calls} API calls)", started)
        return 0 if ok else 1


# ---------------------------------------------------------------------------- recurring billing (issue 16)
def recurring_block(api: Api, contact_ids: list[str], today: datetime, started: float) -> bool:
    """One bill-profile run: three customers on a monthly profile, a weekly service each, this
    month's drafts (kept locally), then the same run again: nothing is created twice."""
    period = f"{today:%Y-%m}"
    api.call(
        "POST",
        "/bill-profiles",
        {"id": "demo-monthly", "name": "Monthly service", "cadence": "monthly", "start_date": "2026-01-01"},
    )
    api.call("POST", "/products", {"id": "demo-weekly", "name": "Weekly pool cleaning"})
    for n, contact_id in enumerate(contact_ids):
        api.call("PUT", f"/contacts/{contact_id}/bill-profile", {"bill_profile_id": "demo-monthly"})
        api.call(
            "POST",
            "/recurring-services",
            {
                "contact_id": contact_id,
                "name": "Weekly pool cleaning",
                "product_id": "demo-weekly",
                "rate": f"{150 + 25 * n}.00",
                "basis": "period",
                "start_date": "2026-01-01",
            },
        )
    counts = []
    for _ in range(2):
        accepted = api.call(
            "POST", f"/bill-profiles/demo-monthly/periods/{period}/drafts", {"destination": "local"}
        )
        for _wait in range(600):
            operation = api.call("GET", f"/operations/{accepted['operation_id']}")
            if operation["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.2)
        counts.append((operation.get("result") or {}).get("counts") or {})
    stage(
        f"bill profile run for {period}: {counts[0].get('created', 0)} draft invoices created; "
        f"the same run again created {counts[1].get('created', 0)} ({counts[1].get('exists', 0)} exist)",
        started,
    )
    return counts[0].get("created") == len(contact_ids) and counts[1].get("created") == 0
