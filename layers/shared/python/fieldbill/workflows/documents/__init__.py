"""Invoice documents: PDFs of one invoice (views.py) and prints of many kept in S3 (prints.py);
`send.py` emails an invoice with its PDF, `events.py` records what SES reports about the message
afterwards (docs/email.md)."""
