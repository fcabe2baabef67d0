"""Login with Amazon, emulated: the token exchange and the check of every API call's token.

The token endpoint takes the four form fields of a refresh-token grant (a JSON body is
accepted too, as Amazon's Java client sends one) and answers as LWA does: 400
``invalid_request`` / ``unsupported_grant_type`` for a malformed request, 401
``invalid_client`` for a wrong client id or secret, 400 ``invalid_grant`` for an unknown
refresh token.  Access tokens live ``ttl`` seconds on the monotonic clock.  Each token
belongs to the refresh token it was exchanged for: that is the selling partner whose
usage plans it draws on.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Mapping

from .._auth import LwaCredentials
from .clock import Clock

__all__ = [
    "AuthFailure",
    "LwaCredentials",
    "TokenAuthority",
    "default_credentials",
    "same_secret",
    "seller_refresh_token",
]

_DENIED = "Access to requested resource is denied."


def same_secret(given: str, expected: str) -> bool:
    """Compare a secret in constant time; any text, not only ASCII (compare_digest's limit)."""
    return secrets.compare_digest(given.encode(), expected.encode())


class AuthFailure(Exception):
    """A call whose access token is missing, unknown or expired (the details say which)."""

    def __init__(self, details: str) -> None:
        super().__init__(details)
        self.details = details

    def errors(self) -> list[dict[str, str]]:
        return [{"code": "Unauthorized", "message": _DENIED, "details": self.details}]


def default_credentials(seed: int) -> LwaCredentials:
    """Credentials derived from the seed: the same seed always gives the same app."""
    rng = random.Random(f"lwa:{seed}")
    hex_ = "0123456789abcdef"
    alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return LwaCredentials(
        client_id="amzn1.application-oa2-client." + "".join(rng.choices(hex_, k=32)),
        client_secret="amzn1.oa2-cs.v1." + "".join(rng.choices(hex_, k=64)),
        refresh_token="Atzr|" + "".join(rng.choices(alnum, k=120)),
    )


def seller_refresh_token(seed: int, index: int) -> str:
    """The refresh token of the emulator's ``index``-th selling partner (0 is the app's
    own, from :func:`default_credentials`): the same seed and index, the same token."""
    if index == 0:
        return default_credentials(seed).refresh_token
    rng = random.Random(f"lwa:{seed}:seller:{index}")
    alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return "Atzr|" + "".join(rng.choices(alnum, k=120))


class TokenAuthority:
    """The app's credentials, the selling partners' refresh tokens and the tokens issued."""

    def __init__(self, credentials: LwaCredentials, clock: Clock, *, ttl: int = 3600) -> None:
        if ttl < 1:
            raise ValueError("token_ttl: must be at least one second")
        self.credentials = credentials
        self.ttl = ttl
        self._clock = clock
        self._refresh_tokens = {credentials.refresh_token}
        self._tokens: dict[str, tuple[str, float]] = {}

    def add_refresh_token(self, refresh_token: str) -> None:
        """Accept another selling partner's refresh token (it gets usage plans of its own)."""
        self._refresh_tokens.add(refresh_token)

    def exchange(self, form: Mapping[str, str]) -> tuple[int, dict[str, object]]:
        """Answer a token request: the status and the JSON body."""
        grant = form.get("grant_type")
        if not grant:
            return _oauth(400, "invalid_request", "The request is missing grant_type.")
        if grant != "refresh_token":
            return _oauth(400, "unsupported_grant_type", f"Unsupported grant_type: {grant}")
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if not client_id or not client_secret:
            return _oauth(400, "invalid_request", "The request is missing client credentials.")
        creds = self.credentials
        if not (
            same_secret(client_id, creds.client_id)
            and same_secret(client_secret, creds.client_secret)
        ):
            return _oauth(401, "invalid_client", "Client authentication failed")
        refresh_token = form.get("refresh_token")
        if not refresh_token:
            return _oauth(400, "invalid_request", "The request is missing refresh_token.")
        if refresh_token not in self._refresh_tokens:
            return _oauth(400, "invalid_grant", "The request has an invalid grant parameter")
        token = "Atza|" + secrets.token_urlsafe(96)
        now = self._clock.monotonic()
        self._prune(now)
        self._tokens[token] = (refresh_token, now + self.ttl)
        return 200, {
            "access_token": token,
            "refresh_token": refresh_token,
            "token_type": "bearer",
            "expires_in": self.ttl,
        }

    def owner(self, token: str | None) -> str:
        """The refresh token behind a valid access token; :class:`AuthFailure` otherwise."""
        if not token:
            raise AuthFailure("Access token is missing in the request header.")
        found = self._tokens.get(token)
        if found is None:
            raise AuthFailure("The access token you provided is revoked, malformed or invalid.")
        owner, expires_at = found
        if self._clock.monotonic() >= expires_at:
            raise AuthFailure("The access token you provided has expired.")
        return owner

    def expire_all(self) -> None:
        """Make every token issued so far expired (clients must exchange again)."""
        now = self._clock.monotonic()
        self._tokens = {t: (o, min(e, now)) for t, (o, e) in self._tokens.items()}

    def revoke_all(self) -> None:
        """Forget every token issued so far (they become invalid, not expired)."""
        self._tokens.clear()

    def _prune(self, now: float) -> None:
        # Expired tokens are kept for an hour so that they still answer "expired".
        if len(self._tokens) > 10_000:
            horizon = now - 3600
            self._tokens = {t: v for t, v in self._tokens.items() if v[1] > horizon}


def _oauth(status: int, error: str, description: str) -> tuple[int, dict[str, object]]:
    return status, {"error": error, "error_description": description}
