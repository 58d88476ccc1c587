"""Test and development doubles that are real implementations (servers, topologies)."""
