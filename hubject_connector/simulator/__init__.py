"""A fake Hubject platform for tests, the sandbox and users' own integration tests.

``run_simulator`` starts one (mutual TLS on 127.0.0.1); ``SimulatorEmp`` plays an EMP
calling a CPO; ``hubject_connector.simulator.pytest_plugin`` offers the
``hubject_simulator`` fixture; ``hubject-connector simulator`` runs one from the shell.
"""

from hubject_connector.simulator.app import BASE_PATH, Simulator, make_app, run_simulator
from hubject_connector.simulator.config import Card, SimulatorConfig, load_cards
from hubject_connector.simulator.emp import EmpCallError, SimulatorEmp
from hubject_connector.simulator.faults import FaultKind
from hubject_connector.simulator.recording import ClientCertificate, RecordedRequest

__all__ = [
    "BASE_PATH",
    "Card",
    "ClientCertificate",
    "EmpCallError",
    "FaultKind",
    "RecordedRequest",
    "Simulator",
    "SimulatorConfig",
    "SimulatorEmp",
    "load_cards",
    "make_app",
    "run_simulator",
]
