"""Recurring billing: draft invoices of a bill profile's period (issue 16)."""
