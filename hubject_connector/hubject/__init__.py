"""The only code that talks to Hubject: TLS, client, retries, rate limits."""
