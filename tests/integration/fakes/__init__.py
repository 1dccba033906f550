"""Fake peers for integration tests (scripted MX servers, DNS)."""
