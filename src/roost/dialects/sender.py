"""Who sent a request: a browser on a visitor's behalf, or a program for itself. The web and
free-form documents' server-side examples send no visitor's user agent; the HTTP client's own
(curl, python-httpx) is then the sender's, and names no visitor's device, so such events are
stored with device `server` rather than classed as bots."""

from __future__ import annotations

# HTTP libraries and tools: such an agent is a program's, on a server or a script — the
# sender of server-side events, not a visitor (a crawler names itself otherwise).
LIBRARY_PREFIXES = (
    "curl/", "wget/", "python-requests/", "python-httpx/", "python-urllib/", "python/",
    "aiohttp/", "go-http-client/", "node-fetch", "node", "undici", "axios/", "got ", "deno/",
    "bun/", "okhttp/", "java/", "java-http-client/", "apache-httpclient/", "jersey/",
    "libwww-perl/", "ruby", "faraday", "guzzlehttp/", "php/", "dart:io", "dart/",
    "restsharp/", "rest-client/", "httpie/", "postmanruntime/", "insomnia/",
)  # fmt: skip
SERVER = "server"  # the device of an event a server sent for itself, naming no visitor's agent


def sent_by_a_program(user_agent: str | None) -> bool:
    """Whether a request's own User-Agent is an HTTP library's (or absent)."""
    return not user_agent or user_agent.strip().lower().startswith(LIBRARY_PREFIXES)
