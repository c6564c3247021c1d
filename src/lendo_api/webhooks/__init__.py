"""Webhooks: registrations, the egress rules, signing, and the dispatcher that delivers events."""
