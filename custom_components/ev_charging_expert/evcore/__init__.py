"""Protocol and load-management core of EV Charging Expert.

Nothing in this package imports Home Assistant: it takes its clock and its persistence as
injected objects so it can be tested and benchmarked on its own.
"""
