"""Test helpers shared by every engineer: see http_server.py (a misbehaving loopback server)."""
