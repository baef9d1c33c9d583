"""997/999/TA1: building acknowledgments and reading inbound ones."""
