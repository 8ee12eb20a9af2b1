"""Environment validated once, at first use (never at import: tests and the local runtime set it late).

The model lives in settings/model.py and is imported on the first get_settings(): pydantic and
pydantic-settings cost about 150 ms of cold start that no handler needs before it runs.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fieldbill.settings.model import Settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    # Deferred: pydantic-settings is ~150 ms of import, paid at first use rather than cold start.
    from fieldbill.settings.model import Settings

    return Settings()  # type: ignore[call-arg]
