"""Live streams: each API key's deliveries pushed to WebSocket and Server-Sent Events clients."""
