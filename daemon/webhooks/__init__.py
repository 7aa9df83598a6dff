"""Webhooks: a team's URLs that get a signed POST for each result done, failed or corrected."""
