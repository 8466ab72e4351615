"""Components that ship with ddr, registered through the same hooks as third-party plugins."""
