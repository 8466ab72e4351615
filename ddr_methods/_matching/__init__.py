"""The matching family (DC, DSA, DM): shared code beside the methods that use it.

``ddr_methods._matching.gradient`` holds the gradient-matching loop and the helpers DM shares (it imports
torch); ``ddr_methods._matching.params`` the parameter schema DC and DSA share (cheap: their registration
modules import it, and ``ddr list`` must not import torch).
"""
