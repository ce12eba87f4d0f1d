"""Pure mapping between the internal messages and OICP models."""
