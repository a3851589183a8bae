"""Pydantic models at every topic and HTTP boundary."""
