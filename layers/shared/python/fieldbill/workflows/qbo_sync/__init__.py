"""The outbound QuickBooks sync: every call we make to QuickBooks (docs/sync.md).

| module     | use case                                                                  |
|------------|---------------------------------------------------------------------------|
| enqueue    | producers: queue invoices (and mark them pending), contact/product pushes  |
| consumer   | the queue consumer: one Lambda batch, each record's outcome                |
| requeue    | what goes back to the queue: visibility, hand-backs, parked messages       |
| backoff    | how long work waits (pure functions)                                       |
| batch      | new invoices packed into QuickBooks batch calls, partial failures          |
| invoices   | create / find by marker / update / void; synced, error, unknown            |
| references | customers and items: ensure, find by name, reactivate, link; our edits     |
| tenants    | the companies of one batch: connection, client, settings                   |

Nothing is imported here, so a producer that imports `enqueue` loads neither the consumer nor
`requeue` (and their boto3 clients and Powertools batch utilities).
"""
