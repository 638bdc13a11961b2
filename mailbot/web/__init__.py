"""The web side of mailbot: the customer's case page (reached by a signed link, no accounts) and
the operators' endpoints (/healthz, /metrics), served with aiohttp on the daemon's own loop."""
