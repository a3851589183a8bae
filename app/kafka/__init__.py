"""Kafka plumbing: topic creation, long-running consumers, the local broker, the stall watch."""
