"""The companies one batch of sync messages works for: connection, client, settings, and the
QuickBooks ids of the customers and items already linked during the batch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fieldbill.observability import logger
from fieldbill.quickbooks import mapping, tokens
from fieldbill.quickbooks.client import QboClient
from fieldbill.quickbooks.errors import NeedsReconnect, Permanent

if TYPE_CHECKING:  # records come from store/ functions; the classes only type them
    from fieldbill.store.models import QboConnection

# The error code of work refused until the settings are saved (inbound.RESUMABLE_ERROR_PREFIXES).
SETTINGS_INCOMPLETE = "fieldbill.settings_incomplete"


@dataclass
class Tenant:
    connection: QboConnection
    client: QboClient
    settings: mapping.QboSettings
    customers: dict[str, str] = field(default_factory=dict)  # contact id -> QuickBooks id
    items: dict[str, str] = field(default_factory=dict)  # product id -> QuickBooks id

    @property
    def tenant_id(self) -> str:
        return str(self.connection.tenant_id)

    @property
    def realm_id(self) -> str | None:
        return self.connection.realm_id


class Tenants:
    """One batch's tenants, each loaded once (a failed load is retried by the next record)."""

    def __init__(self, client_factory: Callable[[str], Any] | None = None) -> None:
        self.client_factory = client_factory or QboClient
        self.loaded: dict[str, Tenant] = {}

    def realm(self, tenant_id: str) -> str | None:
        tenant = self.loaded.get(tenant_id)
        return tenant.realm_id if tenant else None

    def get(self, tenant_id: str) -> Tenant:
        """The tenant's live connection, or NeedsReconnect; Permanent while its settings are incomplete."""
        found = self.loaded.get(tenant_id)
        if found is None:
            connection = tokens.get_connection(tenant_id)
            if connection is None or connection.status != "connected" or not connection.realm_id:
                raise NeedsReconnect(f"tenant {tenant_id} has no live QuickBooks connection")
            missing = tokens.missing_settings(connection.settings)
            if missing:
                # The setup guide: nothing syncs before both default accounts are chosen. Saving
                # them queues again every invoice refused here (inbound.resume_sync).
                raise Permanent(
                    SETTINGS_INCOMPLETE,
                    "QuickBooks settings are incomplete: nothing is synced until they are saved",
                    f"choose {', '.join(missing)} (PUT /quickbooks/settings)",
                    missing[0],
                )
            found = Tenant(
                connection,
                self.client_factory(tenant_id),
                mapping.QboSettings.from_map(connection.settings.as_dict() if connection.settings else {}),
            )
            self.loaded[tenant_id] = found
        logger.append_keys(realm_id=found.connection.realm_id)
        return found
