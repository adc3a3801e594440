"""kiosk — firmware of a self-service ID-photo terminal."""

__version__ = "0.1.0"
