"""Pure parsing and authentication of inbound webhooks (Choppity, Reap); no I/O happens here."""
