"""``genemill serve``: builds the app on the configured database and hands it to uvicorn."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from genemill.cli.serve import serve
from genemill.config import Settings


def test_serve_runs_uvicorn_with_the_app(tmp_path, monkeypatch) -> None:
    import uvicorn

    calls = {}

    def fake_run(app, **kwargs) -> None:
        calls["app"], calls["kwargs"] = app, kwargs

    monkeypatch.setattr(uvicorn, "run", fake_run)
    app = typer.Typer()

    @app.callback()
    def _settings(ctx: typer.Context) -> None:
        ctx.obj = Settings(home=tmp_path / "home")

    app.command("serve")(serve)
    result = CliRunner().invoke(app, ["serve", "--port", "8123"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:8123/" in result.output
    assert calls["kwargs"]["port"] == 8123 and calls["kwargs"]["host"] == "127.0.0.1"
    assert calls["app"].openapi()["paths"]["/v1/search"]  # the app create_app built
