"""The checkout's folders, for tests wherever they sit."""

import os

TESTING_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_DIR = os.path.dirname(TESTING_DIR)
