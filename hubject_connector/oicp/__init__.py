"""The pure OICP 2.3 protocol layer: models, rules, codes and the operation table.

Nothing in this package does I/O or needs an event loop.
"""
