"""mailbot: an email-first ticketing daemon."""
