"""ddr's built-in distillation methods, one subpackage per method (``ddr_methods.dm``, ...).

Each method is registered exactly as a third-party plugin is: through its own entry point in the
``ddr`` group (``dm = "ddr_methods.dm"``), and it imports ddr only through the plugin author's
door (``ddr`` and ``ddr.method``). A method family's shared code lives in a private subpackage
(``_matching``: DC/DSA/DM; ``_selection``: random/herding/K-center; ``_trajectory``: expert
trajectories and the unrolled student of MTT/DATM plus ``ddr experts``; ``_teacherlib``: what
RDED/SRe²L/D⁴M share; ``_coreset``: the coreset selectors' scoring networks, scores and
last-layer gradients). Nothing in ``ddr`` imports this package.
"""
