import sys

from apps.forecasting import main

sys.exit(main())
