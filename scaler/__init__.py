"""cvi-autoscaler: sizes a Pexip CVI for Microsoft Teams deployment in Azure to its call load."""

__version__ = "0.1.0"
