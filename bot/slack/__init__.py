"""Slack surfaces: ids, Block Kit builders, modals and form parsing (pure, no client calls)."""
