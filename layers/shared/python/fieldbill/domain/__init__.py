"""Pure billing domain: no I/O, no boto3, no HTTP.

money (rounding), model (types), products (product resolution and defaults), pricing (unit price
and its source), compile (entries -> billable items), invoicing (grouping, draft invoices),
states (state machines and history records), errors (domain errors the HTTP layer maps).
"""
