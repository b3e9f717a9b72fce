"""Subentry flows: zones, power meters and custom meter models."""
