"""fieldbill: billing back end for service businesses (field work -> invoices -> QuickBooks Online)."""
