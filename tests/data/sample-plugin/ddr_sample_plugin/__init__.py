"""A minimal third-party ddr plugin, used by ddr's install test and as a template.

``plugin`` registers the components (cheap to import, no torch); ``loss`` and ``method`` hold the
code, imported only when a component is used.
"""
