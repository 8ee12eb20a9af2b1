"""QuickBooks Online emulator: OAuth 2.0, Accounting API v3 (entities, query, batch, CDC), limits,
requestid replay, fault injection and signed webhooks, served over real HTTP on 127.0.0.1.

    from local.qbo_emulator import QboEmulator
    emu = QboEmulator(port=0, time_scale=60.0).start()
    emu.register_app("cid", "secret", ["http://localhost/cb"], webhook_url=..., verifier_token=...)
    realm = emu.create_company()
"""

from .emulator import QboEmulator
from .errors import QboFault
from .webhooks import sign as sign_webhook
from .webhooks import verify as verify_webhook

__all__ = ["QboEmulator", "QboFault", "sign_webhook", "verify_webhook"]
