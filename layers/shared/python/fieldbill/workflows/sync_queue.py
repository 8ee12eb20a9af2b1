from fieldbill.workflows.qbo_sync.enqueue import *  # noqa: F403  (moved; the lead removes this after the merge)
