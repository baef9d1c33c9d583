"""Non-X12 input formats (XML now; CSV next): bytes in, parsed values out, no I/O."""
