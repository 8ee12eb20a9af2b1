"""The billing flow: compile and generate pages, the billing run's steps, the jobs worker, and the
one resolver of an invoice's destination."""
