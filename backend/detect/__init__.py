"""Manipulation detection (Pasliev2020 §4, Adebayo et al.'s randomisation check) and a report card."""
