"""Reporting: seed statistics, tables, figures and the verdict of each claim (claims/)."""
