"""Invoice groups: named collections of invoices with charts and actions (issue 16)."""
