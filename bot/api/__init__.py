"""HTTP clients for the post providers (Choppity, Reap): vendor JSON in, domain objects out."""
