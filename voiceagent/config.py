"""Settings: the only place that reads environment variables and default paths."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from platformdirs import user_data_dir
from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The source checkout (dialplans/ and models/ live beside the package)."""


def _default_data_dir() -> Path:
    return Path(user_data_dir("voiceagent", appauthor=False))


class Settings(BaseSettings):
    """Runtime settings, read from ``VOICEAGENT_*`` environment variables or a ``.env`` file."""

    model_config = SettingsConfigDict(env_prefix="VOICEAGENT_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir)
    """Where the SQLite database, recordings and caches go."""
    database_url: str = ""
    """SQLAlchemy URL; empty means a SQLite file in ``data_dir``."""
    dialplans_dir: Path = PROJECT_ROOT / "dialplans"
    """Root of ``<locale>/<name>.yaml`` dialplans and ``routing.yaml``."""
    models_dir: Path | None = Field(
        default=None, validation_alias=AliasChoices("VOICEAGENT_MODELS_DIR", "VOICEAGENT_MODELS")
    )
    """Where the ``models`` command puts speech models (default: ``<data_dir>/models``)."""
    host: str = "127.0.0.1"
    """Address the HTTP server binds."""
    port: int = 8080
    """TCP port of the HTTP server."""
    require_models: bool = False
    """When true, a missing speech model is an error, never a skip."""
    mask_pii: bool = True
    """Mask names, phones, amounts and document numbers in logs."""

    # Speech
    asr: Literal["whisper", "vosk"] = "whisper"
    """Recognizer for live calls: Whisper base (es/pt/en, utterance-level) or Vosk (streaming;
    needs ``voiceagent models fetch LOCALE``)."""

    # Telephony: a SIP extension on a PBX or registrar (off while sip_registrar is empty)
    sip_registrar: str = ""
    """Registrar host; empty disables the SIP endpoint."""
    sip_registrar_port: int = 5060
    sip_user: str = ""
    sip_password: str = ""
    sip_bind: str = "127.0.0.1"
    """Local address for SIP and RTP sockets."""
    sip_advertised: str = ""
    """Address written into Via/Contact/SDP (the public one behind NAT); default: sip_bind."""
    sip_port: int = 5062
    rtp_port_low: int = 10000
    rtp_port_high: int = 20000
    sip_outbound_proxy: str = ""
    """``host:port`` all requests go to (an SBC), if any."""
    sip_media_networks: list[str] = []
    """CIDR networks the far end's RTP may be in (the carrier's / PBX's media servers); an offer
    elsewhere gets 488, so a forged INVITE cannot aim RTP at a third party. Empty: any unicast."""
    sip_allowed_sources: list[str] = []
    """IPs / CIDRs whose INVITEs are accepted (the PBX, proxy or SBC); others get 403 (no
    toll-fraud relay). Empty: only the registrar's and the outbound proxy's addresses."""
    sip_served_numbers: list[str] = []
    """Request-URI users the agent answers (its extension, DIDs); others get 404. Empty: the
    SIP user only."""
    max_calls: int = 8
    """Concurrent calls per worker; further INVITEs get 486 Busy Here."""

    # Telephony: behind Asterisk (AudioSocket + AMI)
    audiosocket: bool = False
    """Run the AudioSocket server for Asterisk's ``AudioSocket()`` application."""
    audiosocket_host: str = "127.0.0.1"
    audiosocket_port: int = 9092
    ami_host: str = ""
    """Asterisk Manager Interface host (transfers, originating calls); empty: no AMI."""
    ami_port: int = 5038
    ami_username: str = ""
    ami_secret: str = ""

    # Web dashboard and API
    session_secret: str = ""
    """Signs web session cookies; empty: a random one per start (sessions end on restart)."""
    session_max_age_s: int = 12 * 3600
    cookie_secure: bool = False
    """Send the session cookie over HTTPS only (set it when a TLS proxy fronts the app)."""
    webhook_url: str = ""
    """Where promise / transfer / stop-contact events are POSTed (HMAC-signed); empty: none."""
    webhook_secret: str = ""

    # Payment slips (after a promise): e-mail over SMTP, SMS/WhatsApp through an HTTP webhook
    smtp_host: str = ""
    """Empty: e-mailed slips fail with "not configured" (and are kept to retry)."""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = ""
    smtp_security: Literal["none", "starttls", "ssl"] = "starttls"
    slip_sms_webhook_url: str = ""
    slip_sms_webhook_secret: str = ""
    slip_whatsapp_webhook_url: str = ""
    slip_instructions: str = ""
    """YAML of per-creditor payment instructions (voiceagent/slips/instructions.example.yaml)."""

    demo: bool | None = None
    """Run the demo campaign (simulated debtors). Default: on with the embedded SQLite
    database, off when ``database_url`` points elsewhere."""

    inbound_fallback_transfer: str = ""
    """Where an inbound caller with no account goes (a human queue); empty: hang up."""
    default_region: str = "CO"
    """Region for phone numbers written without a country code."""

    @model_validator(mode="after")
    def _models_under_data_dir(self) -> Settings:
        if self.models_dir is None:
            self.models_dir = self.data_dir / "models"
        return self

    @property
    def models_path(self) -> Path:
        """The models directory (always set after validation)."""
        assert self.models_dir is not None
        return self.models_dir

    @property
    def demo_enabled(self) -> bool:
        """Whether ``serve`` runs the demo campaign."""
        return self.demo if self.demo is not None else not self.database_url

    @property
    def recordings_dir(self) -> Path:
        """Call recordings and transcripts (``YYYY/MM/DD/<call id>.wav|.json``)."""
        return self.data_dir / "recordings"

    @property
    def tts_cache_dir(self) -> Path:
        """Rendered prompt audio (safe to delete; rebuilt on demand)."""
        return self.data_dir / "cache" / "tts"

    def resolved_database_url(self) -> str:
        """Return the database URL, defaulting to a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'voiceagent.sqlite3'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings (read once)."""
    return Settings()
