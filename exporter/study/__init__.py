"""``shrinkwrap study``: export → parity → bench (→ accuracy) for many models, fanned out, into one directory.

:mod:`exporter.study.jobs` runs one model's ``run`` as a unit (here, or as a Ray task that returns its run
directory as bytes); :mod:`exporter.study.records` holds the typed study record;
:mod:`exporter.study.render` writes ``study.md`` from that record alone.
"""
