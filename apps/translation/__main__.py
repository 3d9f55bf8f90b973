import sys

from apps.translation import main

sys.exit(main())
