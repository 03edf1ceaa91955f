"""Keep the ``mofrr serve`` page offline: nothing it loads comes from outside the server.

Gradio's page template preconnects to Google Fonts and loads a script from cdnjs (for embedding in
iframes); :class:`OfflinePageMiddleware` strips every ``<script src>``/``<link href>`` to another host from
HTML responses and adds a Content-Security-Policy that lets the browser load nothing but the server's own
resources (inline styles, data and blob URLs included, as Gradio uses them).
"""

from __future__ import annotations

import re

EXTERNAL_TAG = re.compile(
    rb"<script\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//[^>]*>\s*</script>"
    rb"|<link\b[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//[^>]*>",
    re.IGNORECASE,
)
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
    "media-src 'self' data: blob:; connect-src 'self'; worker-src 'self' blob:; frame-src 'self'; "
    "form-action 'self'; base-uri 'self'"
)


def strip_external_tags(html: bytes) -> bytes:
    """``html`` without the ``<script src=...>`` and ``<link href=...>`` tags that point to another host."""
    return EXTERNAL_TAG.sub(b"", html)


class OfflinePageMiddleware:
    """ASGI middleware: HTML responses lose their external tags and get :data:`CONTENT_SECURITY_POLICY`;
    every other response (files, JSON, the event stream) passes through untouched."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: dict | None = None
        body: list[bytes] = []

        async def send_offline(message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                if not headers.get(b"content-type", b"").startswith(b"text/html"):
                    await send(message)
                    return
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            body.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            html = strip_external_tags(b"".join(body))
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            headers += [(b"content-length", str(len(html)).encode()),
                        (b"content-security-policy", CONTENT_SECURITY_POLICY.encode())]
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": html})

        await self.app(scope, receive, send_offline)
