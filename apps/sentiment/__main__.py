import sys

from apps.sentiment import main

sys.exit(main())
