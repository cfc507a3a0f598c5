"""`flowrt web`: serve the web view of executions and their savepoints."""

from __future__ import annotations

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, help="Port to listen on.")
def web(host: str, port: int) -> None:
    """Serve the executions, their savepoints and restore in a browser, at http://HOST:PORT/.

    FLOWRT_WEB_AUTH=user:password (several comma-separated) asks for HTTP basic auth on every
    page and API route; without it only a loopback address may be bound.
    """
    import uvicorn

    from flowrt.client import default_client
    from flowrt.web import check_bind, create_app, parse_auth

    client = default_client()
    users = parse_auth(client.settings.web_auth)
    check_bind(host, users)
    if client.settings.embedded_broker:
        client.ensure_worker()  # restores and resumes run here: no other worker reads memory://
    click.echo(f"flowrt web view on http://{host}:{port}/" + (" (basic auth)" if users else ""))
    uvicorn.run(create_app(client, users), host=host, port=port, log_level="warning")
