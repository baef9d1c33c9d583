"""Partner profiles: who a partner is, what it sends, how we map and acknowledge it (pure)."""
