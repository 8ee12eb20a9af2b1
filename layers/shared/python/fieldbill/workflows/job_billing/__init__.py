"""Job-shop job invoicing (issue 14): jobs.py (jobs and invoiceables), invoices.py (the policies'
invoices), accounting.py (approve, export, post, journal). Not the asynchronous operations of
workflows/billing/jobs.py."""
