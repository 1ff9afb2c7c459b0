"""A user's module that raises while it is imported (for tests/workflow/test_bad_inputs.py)."""

raise RuntimeError("this module needs a setting that is missing")
