"""Real servers on loopback for integration tests (test code, not part of the gateway)."""
