"""minima: companion library to the growing-networks and no-barriers papers."""
__version__ = "0.1.0"
