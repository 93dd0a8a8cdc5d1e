"""The figure scripts of the papers, one module each: ``python -m demos.<name> --help``.

Each script is a thin call into ``flowtools.experiments``; see demos/README.md for what
each reproduces and how long it takes.
"""
