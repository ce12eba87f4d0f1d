"""The HTTPS routes Hubject calls."""
