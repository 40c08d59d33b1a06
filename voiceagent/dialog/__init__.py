"""The negotiation: dialplans as data, a pure dialog engine, and text conversations."""
