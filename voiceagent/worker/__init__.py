"""A worker process: telephony in, call sessions, CRM out (wires the layers; owns no logic)."""
