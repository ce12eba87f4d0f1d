"""A fake Hubject platform for tests, the sandbox and users' own integration tests."""
