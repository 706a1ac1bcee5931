"""`creditrisk sagemaker-serve`: the serving container's HTTP server (see :mod:`backend.serving.app`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    from backend.platform.cli import settings

    @app.command("sagemaker-serve")
    def sagemaker_serve(
        model_dir: Annotated[Path, typer.Option(help="The extracted model.tar.gz (SageMaker: /opt/ml/model); "
                                                     "without a package there, the local registry")] = Path("/opt/ml/model"),
        port: Annotated[int | None, typer.Option(min=1, max=65535, help="Default: $SAGEMAKER_BIND_TO_PORT, else 8080")] = None,
        host: Annotated[str, typer.Option(help="0.0.0.0 inside the container (docker/sagemaker/serve)")] = "127.0.0.1",
        workers: Annotated[int | None, typer.Option(min=1, max=64, help="Default: $SAGEMAKER_MODEL_SERVER_WORKERS, else 1")] = None,
        max_batch: Annotated[int | None, typer.Option(min=1, max=1000, help="Applications per invocation")] = None,
    ) -> None:
        """Serve the SageMaker container contract: GET /ping, POST /invocations (JSON or CSV)."""
        from backend.serving.app import default_port, run

        settings()  # a malformed setting fails here, with its name
        run(model_dir, host=host, port=port or default_port(), workers=workers, max_batch=max_batch)
