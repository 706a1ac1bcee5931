"""`creditrisk sagemaker-serve` (the serving container's server) and `creditrisk deploy …` (package,
sagemaker, rollback).

Deploy and rollback act as ``cli:<login>`` (ML engineer) unless ``--as`` names a user, whose role is
read from the users table (deploy: MANAGE_MODELS; rollback: ROLLBACK_MODELS). A refusal or a failure
prints the reason and exits with code 2; ``--dry-run`` prints the exact AWS calls and changes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from backend.platform.cli import acting

deploy_app = typer.Typer(help="Package the model for SageMaker, deploy it with a canary, roll it back.",
                         no_args_is_help=True)
AS_HELP = "The username acting (their role is read from the users table)"


def _deploy_settings(svc: Any, **options: Any) -> Any:
    """The services' settings with the command-line options that were given laid over ``deploy``."""
    given = {k: v for k, v in options.items() if v not in (None, [], "")}
    if not given:
        return svc.settings
    from backend.models.config import DeploySettings

    try:
        deploy = DeploySettings(**{**svc.settings.deploy.model_dump(), **given})
    except ValueError as exc:
        from backend.platform.cli import fail

        fail(f"invalid option: {str(exc).splitlines()[-1][:300]}")
    return svc.settings.model_copy(update={"deploy": deploy})


def _deployer(svc: Any, settings: Any) -> Any:
    from backend.models.deploy import SageMakerDeployer

    return SageMakerDeployer(svc.db, svc.clock, settings, svc.models.registry())


def register(app: typer.Typer) -> None:
    from backend.platform.cli import err, fail, out, services, settings

    app.add_typer(deploy_app, name="deploy")

    @deploy_app.command("package")
    def package(
        ref: Annotated[str, typer.Argument(help="version id, champion or challenger")] = "champion",
        out_file: Annotated[Path, typer.Option("--out", help="Where to write the archive")] = Path("model.tar.gz"),
    ) -> None:
        """Build model.tar.gz (manifest, compiled models, checksums) in the layout the serving container reads."""
        from backend.models.artifacts import RegistryError
        from backend.models.package import PackageError, build_package
        from backend.models.registry import Registry

        s = settings()
        try:
            reg = (services(migrate=False).models.registry() if s.model.registry_url  # MLflow
                   else Registry(s.model.registry_dir, name=s.model.name))
            info = build_package(reg, ref, out_file)
        except (RegistryError, PackageError) as exc:
            fail(str(exc))
            return
        out.print(f"{info.path}: {info.name} {info.version}, {info.size:,} bytes, sha256 {info.sha256}", highlight=False)

    @deploy_app.command("sagemaker")
    def deploy_sagemaker(
        version: Annotated[str, typer.Option(help="version id, champion or challenger")] = "champion",
        endpoint: Annotated[str | None, typer.Option(help="Endpoint name (CREDITRISK_DEPLOY__ENDPOINT_NAME)")] = None,
        alarm: Annotated[list[str] | None, typer.Option(help="CloudWatch alarm that rolls the canary back (repeat)")] = None,
        canary_percent: Annotated[int | None, typer.Option(help="Capacity share of the canary step")] = None,
        wait_interval: Annotated[int | None, typer.Option(help="Seconds the canary bakes before the rest shifts")] = None,
        role_arn: Annotated[str | None, typer.Option(help="SageMaker execution role")] = None,
        image_uri: Annotated[str | None, typer.Option(help="The serving image (ECR)")] = None,
        s3_bucket: Annotated[str | None, typer.Option(help="Bucket for model.tar.gz")] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the exact AWS calls; change nothing")] = False,
        as_user: Annotated[str | None, typer.Option("--as", help=AS_HELP)] = None,
    ) -> None:
        """Upload the model, CreateModel, CreateEndpointConfig, then CreateEndpoint (first time) or UpdateEndpoint
        with a blue/green canary and alarm rollback; wait; autoscale (min..max instances, target CPU). Audited."""
        from backend.models.artifacts import RegistryError
        from backend.models.deploy import DeployError
        from backend.models.halts import DeploymentsHalted
        from backend.models.package import PackageError

        svc = services()
        cfg = _deploy_settings(svc, endpoint_name=endpoint, alarm_names=alarm or [], canary_percent=canary_percent,
                               wait_interval_seconds=wait_interval, role_arn=role_arn, image_uri=image_uri,
                               s3_bucket=s3_bucket)
        try:
            res = _deployer(svc, cfg).deploy(version, acting(svc, as_user), dry_run=dry_run,
                                             progress=lambda m: err.print(m, highlight=False, markup=False))
        except (DeployError, DeploymentsHalted, RegistryError, PackageError) as exc:
            fail(str(exc))
            return
        if dry_run:
            typer.echo(f"dry run: {res.version} to endpoint {res.endpoint} (nothing was called or recorded)")
            for c in res.calls:
                typer.echo(c.describe())  # one line per call, never wrapped
            return
        out.print(f"{res.action}d endpoint {res.endpoint}: {res.version} as {res.config} "
                  f"(previous: {res.previous_config or 'none'}) in {res.seconds:.1f} s", highlight=False)

    @deploy_app.command("rollback")
    def deploy_rollback(
        to: Annotated[str | None, typer.Option(help="Endpoint configuration to return to (default: the one the "
                                                    "current configuration replaced)")] = None,
        endpoint: Annotated[str | None, typer.Option(help="Endpoint name (CREDITRISK_DEPLOY__ENDPOINT_NAME)")] = None,
        alarm: Annotated[list[str] | None, typer.Option(help="CloudWatch alarm that rolls the shift back (repeat)")] = None,
        note: Annotated[str | None, typer.Option(help="Why (kept in the audit trail)")] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the exact AWS calls; change nothing")] = False,
        as_user: Annotated[str | None, typer.Option("--as", help=AS_HELP)] = None,
    ) -> None:
        """Point the endpoint back to its previous configuration with the same guardrails; records the
        audit row and a rollback_test evidence row. Allowed while deployments are halted."""
        from backend.models.deploy import DeployError

        svc = services()
        cfg = _deploy_settings(svc, endpoint_name=endpoint, alarm_names=alarm or [])
        try:
            res = _deployer(svc, cfg).rollback(acting(svc, as_user), to=to, dry_run=dry_run, note=note)
        except DeployError as exc:
            fail(str(exc))
            return
        if dry_run:
            typer.echo(f"dry run: endpoint {res.endpoint} from {res.previous_config} back to {res.config} "
                       "(nothing was called or recorded)")
            for c in res.calls:
                typer.echo(c.describe())  # one line per call, never wrapped
            return
        out.print(f"endpoint {res.endpoint} rolled back from {res.previous_config} to {res.config} ({res.version}) "
                  f"in {res.seconds:.1f} s", highlight=False)
