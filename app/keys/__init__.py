"""API keys: minting and hashing, the command rules, the one admin service, every worker's replica."""
