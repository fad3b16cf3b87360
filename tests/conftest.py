"""Shared test settings: Hypothesis runs derandomized on CI so a red run can be replayed."""
import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=60)
settings.register_profile("dev", deadline=None, max_examples=40)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

# Subprocesses started by tests (`python -m fastmlp ...`, `python -c ...`) must import the
# installed package, not the uncompiled checkout in the working directory.
os.environ["PYTHONSAFEPATH"] = "1"
