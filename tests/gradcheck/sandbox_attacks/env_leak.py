"""Report the whole environment, the working folder and HOME: a CI secret must not be there."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _proto import send

send(env=dict(os.environ), cwd=os.getcwd(), home=os.path.expanduser("~"))
