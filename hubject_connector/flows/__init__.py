"""Use cases that join the bus, the translation and the Hubject client."""
