"""The X12 engine: a pure core that reads, validates, acknowledges and writes X12."""
