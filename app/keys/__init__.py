"""API keys: minting and hashing, command rules, the one admin service, each worker's replica."""
