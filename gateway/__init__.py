"""EDI and file-transfer translation gateway for hospital supply chains."""

__version__ = "0.1.0"
