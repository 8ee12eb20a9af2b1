"""The invoice lifecycle after generation: edit, delete, void, send, payments (issue 13)."""
