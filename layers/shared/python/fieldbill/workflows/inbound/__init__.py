"""QuickBooks -> here: webhooks, schedules, pulls, and the consumer that applies them.

| module       | what it holds                                                                  |
|--------------|--------------------------------------------------------------------------------|
| webhooks     | WebhookFunction: verify, gate, cap, check each event, queue the raw delivery    |
| schedules    | ScheduledPullFunction: one pull message per connected company (light imports)   |
| consumer     | InboundFunction: split deliveries, apply events once (lease), run pulls, waits  |
|              | handed back as fresh copies                                                     |
| pulls        | CDC-or-query pulls with their watermark; manual syncs; one event's apply        |
| applier      | QuickBooks records applied onto contacts, products and our invoices' balances    |
| reconnect    | after the OAuth callback: company name, first pulls, resuming waiting invoices  |

QuickBooks reads live in quickbooks/ (client, CDC reader); every write in store/ (qbo_links for
linked records and invoice balances, qbo_pulls for watermarks and errors, inbound_events).
Nothing is imported here, so each function loads only the modules it needs.
"""
