"""Use cases that join the bus, the translation and the Hubject client.

``Flows`` (``engine.py``) runs one flow per queue: EVSE data (``evse.py``), EVSE status
(``status.py``), authorization (``authorization.py``), charging notifications
(``notifications.py``), CDRs (``cdr.py``) and pricing (``pricing.py``), each answering the
backend with delivery results (``results.py``) and counting itself (``metrics.py``).
"""

from hubject_connector.flows.engine import Flows

__all__ = ["Flows"]
