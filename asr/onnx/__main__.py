import sys

from asr.onnx.runtime import main

sys.exit(main())
