"""Tests of the map language, the shipped maps and the translator."""
