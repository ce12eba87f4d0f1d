"""hubject-connector: a CPO-side OICP 2.3 connector to the Hubject eRoaming platform."""

__version__ = "0.1.0"
