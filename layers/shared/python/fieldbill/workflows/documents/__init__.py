"""Invoice documents leaving the product: `send.py` emails an invoice with its PDF, `events.py`
records what SES reports about the message afterwards (docs/email.md)."""
