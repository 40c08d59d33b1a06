"""SIP endpoint settings and outbound-call results (importable without rfcvoip)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class DialResult(Enum):
    """Why an outbound call was not answered."""

    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    REJECTED = "rejected"


def dial_result_for(status: int) -> DialResult:
    """Map a final SIP response (>= 300) to a dial result."""
    if status in (486, 600):
        return DialResult.BUSY
    if status in (408, 480, 487):
        return DialResult.NO_ANSWER
    if status in (403, 603):
        return DialResult.REJECTED
    return DialResult.FAILED


@dataclass(frozen=True)
class SipConfig:
    """Where to register and how to present ourselves."""

    registrar_host: str
    user: str
    password: str
    registrar_port: int = 5060
    bind_address: str = "0.0.0.0"
    """Local address the SIP and RTP sockets bind to."""
    advertised_address: str = ""
    """Address written into Via, Contact and SDP ``c=`` (the public one behind NAT)."""
    sip_port: int = 5060
    rtp_port_low: int = 10000
    rtp_port_high: int = 20000
    max_calls: int = 8
    """Concurrent calls; further INVITEs get 486 Busy Here."""
    codecs: tuple[str, ...] = ("PCMU", "PCMA")
    """Offered and accepted audio codecs, most preferred first."""
    outbound_proxy: str = ""
    """``host:port`` every request is sent to, in-dialog ones included (an SBC or the proxy)."""
    register_timeout_s: float = 10.0
    media_timeout_s: float = 30.0
    """A call with no inbound RTP for this long is hung up (the far end vanished without BYE)."""
    notify_wait_s: float = 1.0
    """After a REFER is accepted, how long to wait for the NOTIFY with the final sipfrag."""
    media_networks: tuple[str, ...] = ()
    """CIDR networks the far end's RTP (SDP ``c=``) may be in; empty allows any unicast IP.
    An offer outside them gets 488, so a forged INVITE cannot aim RTP at a third party."""
    allowed_sources: tuple[str, ...] = ()
    """IPs or CIDR networks whose new INVITEs are handled (the registrar, proxy or SBC); others
    get 403 Forbidden. Empty means the registrar's and the outbound proxy's addresses only
    (resolved once at start); ``("0.0.0.0/0",)`` accepts any source (not advised)."""
    served_numbers: tuple[str, ...] = ()
    """Request-URI user parts the agent answers (its extension, its DIDs); other INVITEs get
    404 Not Found. Empty means ``user`` only. The agent never relays: no inbound request
    makes it send an INVITE anywhere."""

    @property
    def public_address(self) -> str:
        """The advertised address, defaulting to the bind address."""
        return self.advertised_address or self.bind_address
