import sys

from tnas.meta_train.cli import main

sys.exit(main())
