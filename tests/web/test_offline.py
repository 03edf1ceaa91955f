"""The offline middleware: Gradio's page loses its CDN script and font links, gets a CSP; other responses pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from mofrr_core.web.offline import CONTENT_SECURITY_POLICY, OfflinePageMiddleware, strip_external_tags

PAGE = (b'<html><head><link rel="preconnect" href="https://fonts.googleapis.com" />\n'
        b'<link rel="stylesheet" href=//cdn.example.org/x.css>\n'
        b'<script\n src="https://cdnjs.cloudflare.com/ajax/libs/x.js"\n async\n></script>\n'
        b'<script type="module" crossorigin src="./assets/index.js"></script>\n'
        b'<link rel="manifest" href="/manifest.json" />\n'
        b'<meta property="og:image" content="https://example.org/a.jpg" /></head></html>')


def test_strip_external_tags_keeps_the_servers_own():
    html = strip_external_tags(PAGE)
    assert b"googleapis" not in html and b"cdnjs" not in html and b"cdn.example.org" not in html
    assert b'src="./assets/index.js"' in html and b'href="/manifest.json"' in html
    assert b"og:image" in html  # a meta tag loads nothing


def test_gradios_own_template_loses_its_external_resources():
    gradio = pytest.importorskip("gradio", reason="needs the web extra: pip install 'mofrr[web]'")
    template = (Path(gradio.__file__).parent / "templates" / "frontend" / "index.html").read_bytes()
    assert b"cdnjs.cloudflare.com" in template and b"fonts.googleapis.com" in template
    html = strip_external_tags(template)
    assert b"cdnjs" not in html and b"fonts.googleapis" not in html and b"fonts.gstatic" not in html
    assert html.count(b"<script") == template.count(b"<script") - 1


def test_middleware_rewrites_html_only():
    pytest.importorskip("fastapi", reason="needs the web extra: pip install 'mofrr[web]'")
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
    from fastapi.testclient import TestClient

    app = FastAPI()
    app.add_middleware(OfflinePageMiddleware)
    app.get("/")(lambda: HTMLResponse(PAGE))
    app.get("/data")(lambda: JSONResponse({"url": "https://cdnjs.cloudflare.com/x.js"}))
    app.get("/chunks")(lambda: StreamingResponse(iter([PAGE[:100], PAGE[100:]]), media_type="text/html"))
    client = TestClient(app)

    for path in ("/", "/chunks"):
        page = client.get(path)
        assert page.content == strip_external_tags(PAGE) and int(page.headers["content-length"]) == len(page.content)
        assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    data = client.get("/data")
    assert data.json() == {"url": "https://cdnjs.cloudflare.com/x.js"}
    assert "content-security-policy" not in data.headers
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY and "connect-src 'self'" in CONTENT_SECURITY_POLICY
