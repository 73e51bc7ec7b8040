import sys

from inpaintlab.serve.app import main

sys.exit(main())
