"""The runtime: the composition root that wires inbox, archive, store, translator and outbox."""
