"""The internal queue between the connector and the CPO backend."""
