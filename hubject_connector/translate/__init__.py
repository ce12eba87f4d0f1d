"""Pure mapping between the internal messages and OICP models.

``outbound``: the bus contract's ``data`` to OICP requests (and Hubject's authorization
answers back to reply ``data``); ``payload``: the field-by-field walk behind it, which
remembers where each OICP field came from so that errors name the contract field;
``times``: the charge point's local offset for times given in UTC; ``errors``:
``TranslationError``.
"""
