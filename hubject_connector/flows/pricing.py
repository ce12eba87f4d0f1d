"""Dynamic pricing: pricing products and EVSE pricing to Hubject (eRoamingDynamicPricing 1.0).

What passes through: ``pricing.products.v1`` (PushPricingProductData) and
``pricing.evse.v1`` (PushEVSEPricing) from the ``pricing`` queue (ordered), each sent as
one push with the ActionType the backend chose; one delivery result per message. Pushes
are serialized like EVSE data (``store.exclusive`` per operation), Hubject allowing only
6 a minute (the client's rate limit waits for a free slot).
"""

from __future__ import annotations

from typing import Final

from hubject_connector.bus.base import IncomingMessage
from hubject_connector.bus.contract import Envelope, MessageType
from hubject_connector.flows.delivery import Flow, attempts_of, refusal_reason
from hubject_connector.flows.results import Verdict
from hubject_connector.hubject.errors import OicpStatusError
from hubject_connector.translate import outbound

PRODUCTS: Final = "PushPricingProductData"
EVSE_PRICING: Final = "PushEVSEPricing"


class PricingFlow(Flow):
    """Pricing pushes from the ``pricing`` queue to Hubject (module doc)."""

    name = "pricing"
    what = "pricing data"

    async def handle(self, message: IncomingMessage, envelope: Envelope) -> Verdict | None:
        """Push the pricing products or the EVSE pricing; the verdict."""
        ctx = self.context
        data = envelope.data
        operator_id = outbound.operator_of(data, ctx)
        request: object
        if envelope.type is MessageType.PRICING_PRODUCTS:
            operation, request, what = PRODUCTS, outbound.pricing_products(data, ctx), \
                "pricing products"
        elif envelope.type is MessageType.PRICING_EVSE:
            operation, request, what = EVSE_PRICING, outbound.evse_pricing(data, ctx), \
                "EVSE pricing"
        else:
            return Verdict.dropped(f"{envelope.type} is not handled by the pricing flow")
        async with self.parts.store.exclusive(operation):
            try:
                await self.call(operation, request, operator_id)
            except OicpStatusError as exc:
                if exc.transient:
                    raise
                return Verdict.refused_by_hubject(
                    exc, attempts=attempts_of(message), reason=refusal_reason(exc, what))
        return Verdict.accepted(attempts=attempts_of(message))
