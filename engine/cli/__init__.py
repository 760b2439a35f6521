"""Command line: parsed arguments in, exit statuses and files out.

``options`` checks every option's range before any work, ``commands`` runs play, render, transfer,
evaluate, devices and export-onnx, ``bench`` measures the live path's speed.
"""
