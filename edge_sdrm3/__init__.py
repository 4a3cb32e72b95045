"""edge-sdrm3: a real-time multi-model scheduler service for headset-class devices."""
__version__ = "0.1.0"
