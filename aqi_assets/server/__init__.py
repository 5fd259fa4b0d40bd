"""The token-protected Dagster webserver (``aqi-webserver``) and the token headers its clients send."""

from aqi_assets.server.auth import auth_headers

__all__ = ["auth_headers"]
