import sys

from apps.captioning import main

# Guarded: the search's fresh processes (multiprocessing "spawn") import this module.
if __name__ == "__main__":
    sys.exit(main())
