"""Loan-application HTTP API: stores applications and follows their status."""
