#!/usr/bin/env python3
"""Open a Miles run's TensorBoard event files with TensorBoard's own reader.

    /opt/miles-ref/bin/python tests/check_tensorboard.py RUN_DIR/tb

(tensorboard==2.16.2 from PyPI; not needed by CI, whose test_tbevents parses the
files with an independent C reader.)  Prints the scalar tags and their last values;
exits non-zero if nothing can be read.
"""
import sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

ea = EventAccumulator(sys.argv[1])
ea.Reload()
tags = ea.Tags()["scalars"]
if not tags:
    sys.exit("no scalars found in %s" % sys.argv[1])
for t in tags:
    s = ea.Scalars(t)
    print("%-20s %5d points, last step %d value %.6g" % (t, len(s), s[-1].step, s[-1].value))
