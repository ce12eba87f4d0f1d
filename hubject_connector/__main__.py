"""``python -m hubject_connector``: the same as the ``hubject-connector`` command."""

import sys

from hubject_connector.cli import main

sys.exit(main())
