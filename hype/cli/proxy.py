"""Front-server commands: the nginx configuration for nginx in front of several app servers."""

from __future__ import annotations

import getpass
from pathlib import Path

import click

from hype.cli.base import Context, fail, pass_ctx


@click.command("nginx-config")
@click.option("--upstream", "upstreams", multiple=True, metavar="HOST:PORT",
              help="An app server (`hype serve --production --behind-nginx`); repeat for each. Default: 127.0.0.1:8000.")
@click.option("--listen", default="80", show_default=True, help="What nginx listens on: a port or address:port.")
@click.option("--server-name", default="_", show_default=True, help="The site's host name(s).")
@click.option("--served-dir", type=click.Path(file_okay=False, path_type=Path),
              help="The data dir's served/ folder as the nginx machine sees it. Default: this data dir's.")
@click.option("--standalone", "prefix", type=click.Path(file_okay=False, path_type=Path),
              help="Write a whole nginx.conf whose pid, logs and temp files live in this folder "
                   "(run: nginx -p DIR -c DIR/nginx.conf -e stderr).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
@pass_ctx
def nginx_config_cmd(ctx: Context, upstreams: tuple[str, ...], listen: str, server_name: str, served_dir: Path | None,
                     prefix: Path | None, output: Path | None) -> None:
    """Write the nginx configuration for nginx in front of hype's app servers.

    nginx sends image files itself once an app server has allowed them (X-Accel-Redirect), and
    spreads requests over the app servers; PostgreSQL is the one store they share. Without
    --standalone the output is a server block for /etc/nginx/conf.d/ (Debian's nginx).
    """
    from hype.proxy.nginx import NginxSite, render_site, render_standalone

    config = ctx.config
    try:
        site = NginxSite(upstreams=upstreams or ("127.0.0.1:8000",),
                         served_dir=(served_dir or config.served_dir).resolve(), listen=listen,
                         server_name=server_name, max_body_bytes=config.max_upload_bytes)
        if prefix is not None:
            prefix = prefix.resolve()
            prefix.mkdir(parents=True, exist_ok=True)
            # nginx started by root drops to `nobody` unless told otherwise; the one who runs this
            # command owns the data dir, so the workers run as them.
            text = render_standalone(site, prefix, user=getpass.getuser() if _is_root() else None)
        else:
            text = render_site(site)
    except ValueError as exc:
        fail(str(exc))
        return
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)
        click.echo(f"wrote {output}", err=True)


def _is_root() -> bool:
    import os

    return os.geteuid() == 0


commands = [nginx_config_cmd]
