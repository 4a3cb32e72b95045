"""The live service: asyncio lifecycle, ZeroMQ ingest/egress, per-accelerator executors, systemd notify, recorder."""
