"""The ``teamocr`` command line: the one place that parses arguments and wires settings, logging
and objects together. It sits above the web and the daemon, and is the only package that imports
both; ``teamocr = cli.main:main``, and ``python -m cli`` is the same program."""
