"""Invoice documents: PDFs of one invoice (views.py) and prints of many kept in S3 (prints.py)."""
