"""`python -m service`: the same commands as `checkin-gateway`."""

import sys

from service.cli.main import main

sys.exit(main())
