"""The dialer: call-list import, campaigns, pacing and the compliance rules it applies."""
