"""Transports: SIP/RTP, Asterisk AudioSocket and the simulated debtor, all as 20 ms frames."""
