"""Capture (layer 4): snapshots out of live Redis/Valkey nodes."""
