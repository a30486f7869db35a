"""Actionstep (legal practice management) source: REST client, quirks and a dataset generator."""
