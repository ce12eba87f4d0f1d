"""The HTTPS routes Hubject calls: remote start/stop and reservations, answered by the backend.

``InboundServer`` (server.py) is the whole of it for the application; ``tls`` holds the
server certificate and the client certificate checks, ``handlers`` the routes and the gate
in front of them, ``connection`` one client connection, ``commands`` the round trip to the
backend over the bus.
"""

from hubject_connector.inbound.server import InboundServer

__all__ = ["InboundServer"]
