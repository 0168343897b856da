"""nginx configuration for the scale-out topology: nginx in front, any number of hype app servers
behind it (``upstream``), PostgreSQL the one shared store.

Pure text: nothing here touches the network or the database. The internal location that the app's
X-Accel-Redirect names, and the headers served images carry, are fixed here and nowhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# The internal location image responses are redirected to; requests from outside are refused (404),
# so the served files can only be reached through an app server's permission.
ACCEL_PREFIX = "/_hype_served/"
_UPSTREAM = re.compile(r"^(unix:/[^\s;{}]+|[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5})$")


def accel_path(file_sha256: str) -> str:
    """The internal URI of a served image (hype.images.served_file lays the files out the same way)."""
    return f"{ACCEL_PREFIX}{file_sha256[:2]}/{file_sha256}.png"


@dataclass(frozen=True)
class NginxSite:
    upstreams: tuple[str, ...]  # "host:port" of each app server (or "unix:/path")
    served_dir: Path  # the data dir's served/ folder, as nginx sees it
    listen: str = "80"
    server_name: str = "_"
    max_body_bytes: int = 512 * 1024 * 1024  # the app's own limit (Config.max_upload_bytes) decides below this

    def __post_init__(self) -> None:
        if not self.upstreams:
            raise ValueError("name at least one app server (host:port)")
        for upstream in self.upstreams:
            if not _UPSTREAM.match(upstream):
                raise ValueError(f"an app server is host:port or unix:/path, not {upstream!r}")
        if not re.fullmatch(r"[A-Za-z0-9.:\[\]\-]+( ssl)?", self.listen):
            raise ValueError(f"listen is a port or address:port, not {self.listen!r}")
        if not re.fullmatch(r"[A-Za-z0-9.*_\- ]+", self.server_name):
            raise ValueError(f"server_name is host names separated by spaces, not {self.server_name!r}")
        if re.search(r"[\s;{}\"']", str(self.served_dir)):
            raise ValueError("the served folder's path must not contain spaces, quotes, ; or braces")


def render_site(site: NginxSite) -> str:
    """An `http`-level snippet (upstream + server) for /etc/nginx/conf.d/ or sites-enabled/."""
    servers = "\n".join(f"    server {u} max_fails=1 fail_timeout=5s;" for u in site.upstreams)
    served = str(site.served_dir).rstrip("/") + "/"
    return f"""# Written by `hype nginx-config`. nginx in front of {len(site.upstreams)} hype app server(s).
upstream hype_app {{
{servers}
    keepalive 64;
    keepalive_timeout 1s;  # below gunicorn's own keep-alive (2 s), so nginx never reuses a closed one
}}

server {{
    listen {site.listen};
    server_name {site.server_name};
    client_max_body_size {site.max_body_bytes};
    server_tokens off;

    # Image bytes, after an app server allowed them (X-Accel-Redirect). Same headers as when the app
    # sends them itself: no Last-Modified or ETag, which would tell images imported at different
    # times (reals from fakes) apart; never cached.
    location {ACCEL_PREFIX} {{
        internal;
        alias {served};
        etag off;
        max_ranges 0;
        if_modified_since off;
        add_header Last-Modified "" always;
        add_header Cache-Control "private, no-store" always;
        add_header X-Content-Type-Options nosniff always;
        add_header Referrer-Policy no-referrer always;
    }}

    location / {{
        proxy_pass http://hype_app;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Forwarded-Host $host;
        # A request goes to the next app server only if this one could not be reached or failed
        # before answering; nginx never resends a POST that reached an app (non_idempotent is off),
        # and the worker API's idempotency keys make the browser's own retries safe.
        proxy_next_upstream error timeout http_502 http_503;
        proxy_next_upstream_tries 2;
        proxy_connect_timeout 5s;
        proxy_read_timeout 120s;
        proxy_request_buffering off;
    }}
}}
"""


def render_standalone(site: NginxSite, prefix: Path, *, user: str | None = None, worker_connections: int = 8192) -> str:
    """A whole nginx.conf that runs without root's files (`nginx -p PREFIX -c PREFIX/nginx.conf -e
    stderr`): for tests, the load benchmark and a one-machine trial of the topology."""
    prefix = Path(prefix)
    if re.search(r"[\s;{}\"']", str(prefix)):
        raise ValueError("the prefix path must not contain spaces, quotes, ; or braces")
    user_line = f"user {user};\n" if user else ""
    temp = "\n".join(f"    {name}_temp_path {prefix / name};" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    site_text = "\n".join(f"    {line}" if line else "" for line in render_site(site).splitlines())
    return f"""# Written by `hype nginx-config --standalone`.
{user_line}worker_processes auto;
worker_rlimit_nofile {worker_connections * 2};
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;

events {{
    worker_connections {worker_connections};
}}

http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 100000;
    access_log off;
{temp}

{site_text}
}}
"""
