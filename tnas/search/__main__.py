import sys

from tnas.search.cli import main

sys.exit(main())
