"""Generators for datso's synthetic sample province (deterministic; every row has synthetic = true)."""
