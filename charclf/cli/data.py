"""`charclf data fetch`: the names dataset, downloaded and verified."""

from __future__ import annotations

from pathlib import Path

import click

from charclf.cli.app import main, reports_errors
from charclf.cli.console import VERBOSE, say, show_progress, verbosity_options
from charclf.cli.params import FilePath


@main.group()
def data():
    """Get the names dataset."""


@data.command()
@click.option("--dest", type=FilePath(file_okay=False, path_type=Path), default=Path("data/names"),
              show_default=True, help="Folder to put the <Label>.txt files in.")
@click.option("--url", default=None, help="Archive to download. Default: the PyTorch tutorial's data.zip.")
@click.option("--manifest", type=FilePath(dir_okay=False, exists=True, path_type=Path),
              help="sha256sum-style checksums to verify against. Default: the ones charclf ships.")
@click.option("--force", is_flag=True,
              help="Replace the names files an earlier fetch installed in --dest (nothing else is ever deleted).")
@verbosity_options("Also print the address downloaded and every file installed.")
@reports_errors
def fetch(dest, url, manifest, force, verbosity):
    """Download the tutorial's names archive, verify every file, then move it into place.

    Nothing is written unless every file's checksum matches; a failed or corrupted
    download leaves no partial folder behind.

    \b
    Example:
      charclf data fetch --dest data/names
    """
    from charclf.data.fetch import OFFICIAL_URL, fetch_dataset

    say(verbosity, f"downloading {url or OFFICIAL_URL}", VERBOSE)
    installed = fetch_dataset(dest, url=url or OFFICIAL_URL, manifest=manifest, force=force,
                              progress=show_progress(verbosity))
    for name in installed:
        say(verbosity, f"  {dest / name}", VERBOSE)
    click.echo(f"verified and installed {len(installed)} files into {dest}")
