"""Which paths are whose: the key holder's API, the admin's, and everything else the operator's.

One list, so a route added for key holders is public, JSON-answered and open to CORS at once.
Why a list of what is allowed: a page added later (ours or Faust's) is the operator's by
default.
"""

from __future__ import annotations

# What a key holder's page calls: the API key's routes, the stream and its token, the schema.
KEY_HOLDER_PREFIXES = (
    "/ocr",
    "/keywords",
    "/openapi.json",
    "/ws",
    "/stream",
    "/webhooks",
    "/tg_subscription",
    "/addresses/",
    "/trending",
)
# Served to anyone on the web port: the key holder's, the admin's (its key checked by its
# routes), and the bundled sample images.
PUBLIC_PREFIXES = (*KEY_HOLDER_PREFIXES, "/admin/", "/samples/")
# Answered with the API's JSON errors, even for a path nothing serves.
API_PREFIXES = (*KEY_HOLDER_PREFIXES, "/admin")
