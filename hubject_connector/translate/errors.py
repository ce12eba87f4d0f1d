"""The error of the translation layer: contract data that cannot become a valid OICP message."""

from __future__ import annotations

from collections.abc import Iterable

from hubject_connector.bus.contract import ContractIssue
from hubject_connector.errors import OicpError


class TranslationError(OicpError):
    """Contract data that cannot become a valid OICP message. Permanent: resending cannot help.

    ``issues`` name the offending contract field by JSON pointer from the envelope's root
    (``/data/evse/plugs/0``), never the OICP field it would have become, each with its rule
    in words, so that the backend's developer can find it in what they sent. The status code
    it suggests is 022 (data error), the code a delivery result ``rejected`` carries when
    the connector itself refuses the data.
    """

    status_code = "022"

    def __init__(self, issues: Iterable[ContractIssue]) -> None:
        unique = {(issue.pointer, issue.message): issue for issue in issues}
        self.issues: tuple[ContractIssue, ...] = tuple(
            unique[key] for key in sorted(unique)
        )
        super().__init__(
            "; ".join(str(issue) for issue in self.issues) or "the data cannot be translated"
        )

    @classmethod
    def at(cls, pointer: str, message: str) -> TranslationError:
        """The error of one issue."""
        return cls([ContractIssue(pointer, message)])
