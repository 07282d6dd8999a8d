import os
import sys

# the oracles in tests/reference.py are imported as a plain module
sys.path.insert(0, os.path.dirname(__file__))
