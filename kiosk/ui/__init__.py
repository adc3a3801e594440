"""The local touchscreen web UI: reflects the session state pushed by the service, decides nothing."""
