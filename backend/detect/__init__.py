"""Manipulation detection (thesis 002 §4, Adebayo et al.'s randomisation check) and a report card."""
