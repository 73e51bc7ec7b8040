import sys

from inpaintlab.serve.command import main

sys.exit(main())
