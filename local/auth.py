"""A local development JWT issuer, and the check API Gateway's JWT authorizer performs.

The key is kept in .local/ so tokens minted by `make token` stay valid across restarts of
`make serve`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from local.template import ROOT

ISSUER = "https://local-issuer.fieldbill.invalid"
AUDIENCE = "fieldbill-local"
KEY_PATH = ROOT / ".local" / "dev-issuer-key.pem"


class DevIssuer:
    def __init__(
        self,
        key_path: Path = KEY_PATH,
        issuer: str = ISSUER,
        audience: str = AUDIENCE,
        tenant_claim: str = "tenant_id",
    ):
        self.issuer, self.audience, self.tenant_claim = issuer, audience, tenant_claim
        if key_path.exists():
            self._key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        else:
            self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            key_path.parent.mkdir(parents=True, exist_ok=True)
            key_path.write_bytes(
                self._key.private_bytes(  # type: ignore[union-attr]
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        self._public = self._key.public_key()

    def mint(
        self, tenant_id: str, subject: str = "user-1", ttl_seconds: int = 12 * 3600, scopes: str = "billing"
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": now,
            "exp": now + ttl_seconds,
            self.tenant_claim: tenant_id,
            "scope": scopes,
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": "local-1"})  # type: ignore[arg-type]

    def verify(self, authorization: str | None) -> dict[str, Any] | None:
        """Claims when the bearer token is valid for this issuer and audience, else None (401)."""
        if not authorization:
            return None
        token = authorization[7:] if authorization.lower().startswith("bearer ") else authorization
        try:
            return jwt.decode(
                token,
                self._public,
                algorithms=["RS256"],
                audience=self.audience,  # type: ignore[arg-type]
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError:
            return None
