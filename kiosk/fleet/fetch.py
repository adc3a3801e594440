"""The terminal's side of the fleet repository: python-tuf's ngclient refreshes the metadata
(refusing expired, rolled-back, mix-and-match or forged metadata) before any bundle is trusted.

``file://`` URLs are served by ``FileFetcher`` (a repository copied to a USB stick, and tests);
``http(s)://`` by ngclient's own urllib3 fetcher.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from tuf.api import exceptions as tuf_errors
from tuf.ngclient import FetcherInterface, Updater

from kiosk.errors import KioskError
from kiosk.fleet.bundle import parse_version
from kiosk.fleet.repository import target_name


class FetchError(KioskError):
    """The fleet repository could not be trusted or reached."""


class FileFetcher(FetcherInterface):
    def _fetch(self, url: str) -> Iterator[bytes]:
        path = Path(unquote(urlparse(url).path))
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed by the generator
        except FileNotFoundError:
            raise tuf_errors.DownloadHTTPError(f"{path} not found", 404) from None
        with fh:
            while chunk := fh.read(1 << 16):
                yield chunk


@dataclass(frozen=True)
class Available:
    version: str
    target: str
    length: int


def _client(tuf_dir: Path, url: str, download_dir: Path) -> Updater:
    if not (tuf_dir / "root.json").is_file():
        raise FetchError(f"trusted root not found: {tuf_dir / 'root.json'} (provision the terminal first)")
    url = url.rstrip("/")
    fetcher = FileFetcher() if url.startswith("file://") else None
    download_dir.mkdir(parents=True, exist_ok=True)
    return Updater(
        metadata_dir=str(tuf_dir),
        metadata_base_url=f"{url}/metadata/",
        target_base_url=f"{url}/targets/",
        target_dir=str(download_dir),
        fetcher=fetcher,
        bootstrap=None,  # the trusted root.json in metadata_dir (provisioned, then updated by TUF)
    )


def _explain(exc: Exception) -> str:
    kinds = {
        tuf_errors.ExpiredMetadataError: "expired metadata (repository frozen or clock wrong)",
        tuf_errors.BadVersionNumberError: "rolled-back metadata (older than what this terminal has seen)",
        tuf_errors.UnsignedMetadataError: "metadata not signed by the trusted keys",
        tuf_errors.LengthOrHashMismatchError: "file does not match its signed hash or length",
        tuf_errors.DownloadError: "download failed",
        tuf_errors.RepositoryError: "repository metadata rejected",
    }
    for kind, text in kinds.items():
        if isinstance(exc, kind):
            return f"{text}: {exc}"
    return str(exc)


def _lookup(client: Updater, arch: str):
    """The bundle for this architecture, else an architecture-independent one."""
    return client.get_targetinfo(target_name(arch)) or client.get_targetinfo(target_name("any"))


def check(tuf_dir: Path, url: str, arch: str, download_dir: Path) -> Available | None:
    """Refresh the trusted metadata; return the release the repository offers for ``arch``."""
    try:
        client = _client(tuf_dir, url, download_dir)
        client.refresh()
        info = _lookup(client, arch)
    except (tuf_errors.RepositoryError, tuf_errors.DownloadError, OSError, ValueError) as exc:
        raise FetchError(f"fleet repository {url}: {_explain(exc)}") from None
    if info is None:
        return None
    version = (info.custom or {}).get("version") if isinstance(info.custom, dict) else None
    parse_version(version)
    return Available(version, info.path, info.length)


def download(tuf_dir: Path, url: str, arch: str, download_dir: Path) -> tuple[Available, Path]:
    """Fetch the architecture's bundle, verified against the signed hash and length."""
    try:
        client = _client(tuf_dir, url, download_dir)
        client.refresh()
        info = _lookup(client, arch)
        if info is None:
            raise FetchError(f"fleet repository {url} offers no bundle for {arch}")
        version = (info.custom or {}).get("version") if isinstance(info.custom, dict) else None
        parse_version(version)
        path = client.find_cached_target(info) or client.download_target(info)
    except FetchError:
        raise
    except (tuf_errors.RepositoryError, tuf_errors.DownloadError, OSError, ValueError) as exc:
        raise FetchError(f"fleet repository {url}: {_explain(exc)}") from None
    return Available(version, info.path, info.length), Path(path)


def provision_root(root_json: Path, tuf_dir: Path) -> Path:
    """Install the first trusted root.json (provisioning; later versions arrive through TUF)."""
    tuf_dir.mkdir(parents=True, exist_ok=True)
    dest = tuf_dir / "root.json"
    shutil.copyfile(root_json, dest)
    return dest
