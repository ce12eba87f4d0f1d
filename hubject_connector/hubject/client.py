"""``HubjectClient``: the only code that sends requests to Hubject.

A call encodes an OICP model with ``oicp.codec``, POSTs it as UTF-8 JSON to the
operation's path (operation table), and decodes the answer into the operation's answer
model. On the way it passes the operation's gate (rate limiter; for pushes, a lock held
for the whole call so pushes of one operation never overlap, retries included), presents
the client certificate in force (``ClientTls``, reloaded on rotation), repeats transient
failures (``retry``), and counts everything (``metrics``).

Failures are typed (``hubject.errors``): TLS problems say whose certificate was refused;
transport errors say whether the request may have reached Hubject; ``OicpStatusError``
carries Hubject's status code; ``InvalidAnswerError`` a malformed answer.

Session ownership follows python-wled: pass ``session=`` to share one (it is not closed
here), or let the client make its own and close it. Add ``trace_config()`` to a shared
session's ``trace_configs`` for the precise failure diagnosis that the client's own
session gets (whether a request was sent, whether the connection was new).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import random as _random
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace, TracebackType
from typing import Any, Final, Self, cast

import aiohttp
import structlog
import yarl
from aiohttp_retry import RetryClient
from prometheus_client import REGISTRY, CollectorRegistry

from hubject_connector.config import HubjectConfig
from hubject_connector.errors import ConfigError
from hubject_connector.hubject import retry as retry_policy
from hubject_connector.hubject.errors import (
    ClientCertificateExpired,
    ClientCertificateRejected,
    ConnectionFailed,
    ConnectionLost,
    ConnectTimeout,
    HttpStatusError,
    HubjectTransportError,
    InvalidAnswerError,
    OicpStatusError,
    RedirectRefused,
    RequestTimeout,
    ServerCertificateUntrusted,
    TlsError,
)
from hubject_connector.hubject.ratelimit import MINUTE, OperationGate, build_gates
from hubject_connector.hubject.tls import ClientTls
from hubject_connector.logs import mask_text
from hubject_connector.metrics import NONE, HubjectMetrics
from hubject_connector.oicp import codec, messages, status
from hubject_connector.oicp.authorization import AuthorizationStart, checked_answer
from hubject_connector.oicp.conformance import SpecRule
from hubject_connector.oicp.operations import Operation
from hubject_connector.oicp.operations import operation as find_operation

_log = structlog.get_logger(__name__)

#: Characters of a body quoted in errors and logs (identifiers masked).
BODY_EXCERPT_CHARS: Final = 300
#: Largest answer read from Hubject (its answers are a few hundred bytes).
MAX_ANSWER_BYTES: Final = 1024 * 1024
# Request bodies above this are streamed (aiohttp's threshold for its warning).
_STREAMED_BYTES: Final = 512 * 1024
_JSON_HEADERS: Final = {
    "Content-Type": "application/json; charset=utf-8",
    "Accept": "application/json",
}
# Alerts by which a TLS server says it refused our certificate (OpenSSL reason names).
_CLIENT_CERT_ALERTS: Final = (
    "UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_EXPIRED", "CERTIFICATE_REQUIRED",
    "CERTIFICATE_UNKNOWN", "CERTIFICATE_REVOKED", "UNSUPPORTED_CERTIFICATE", "ACCESS_DENIED",
)
_RESET_ERRNOS: Final = frozenset({errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE})
#: Longest time spent finding out whether a reset meant a refused certificate.
PROBE_TIMEOUT_SECONDS: Final = 2.0
_PROBE_POLL_SECONDS: Final = 0.02


@dataclass(slots=True)
class AttemptTrace:
    """What aiohttp's tracing saw of one attempt; ``None`` where it was not traced."""

    fresh_connection: bool | None = None
    headers_sent: bool | None = None
    response_started: bool | None = None


def trace_config() -> aiohttp.TraceConfig:
    """Tracing that lets the client tell whether a failed request was sent at all."""

    def attempt(ctx: SimpleNamespace) -> AttemptTrace | None:
        trace = getattr(ctx, "trace_request_ctx", None)
        return trace if isinstance(trace, AttemptTrace) else None

    async def on_request_start(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
        if (trace := attempt(ctx)) is not None:
            trace.fresh_connection = False
            trace.headers_sent = False
            trace.response_started = False

    async def on_connection_create_end(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
        if (trace := attempt(ctx)) is not None:
            trace.fresh_connection = True

    async def on_headers_sent(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
        if (trace := attempt(ctx)) is not None:
            trace.headers_sent = True

    async def on_request_end(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
        if (trace := attempt(ctx)) is not None:
            trace.response_started = True

    config = aiohttp.TraceConfig()
    config.on_request_start.append(on_request_start)
    config.on_connection_create_end.append(on_connection_create_end)
    config.on_request_headers_sent.append(on_headers_sent)
    config.on_request_end.append(on_request_end)
    return config


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and everything it wraps (cause, context, aiohttp's ``os_error``)."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        todo.extend([item.__cause__, item.__context__, getattr(item, "os_error", None),
                     getattr(item, "certificate_error", None)])
    return seen


def _cause(exc: BaseException) -> str:
    """The innermost error in words, without aiohttp's connection-key details."""
    chain = _chain(exc)
    inner = [e for e in chain if not isinstance(e, aiohttp.ClientError)] or chain
    error = inner[-1] if len(inner) > 1 else inner[0]
    text = getattr(error, "strerror", None) or str(error)
    name = type(error).__name__
    return f"{name}: {text}" if text and text != name else name


def _is_reset(chain: list[BaseException]) -> bool:
    for item in chain:
        if isinstance(item, ConnectionResetError | ConnectionAbortedError | BrokenPipeError
                      | ssl.SSLEOFError):
            return True
        if isinstance(item, OSError) and item.errno in _RESET_ERRNOS:
            return True
    return False


def _excerpt(body: bytes) -> str:
    text = body[:BODY_EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
    text = text[:BODY_EXCERPT_CHARS] + ("…" if len(text) > BODY_EXCERPT_CHARS else "")
    return mask_text(text)


async def _read_answer(op: Operation, response: aiohttp.ClientResponse) -> bytes:
    """The body of an answer, at most ``MAX_ANSWER_BYTES``: Hubject's answers are small,
    and an endless one must not fill the memory. Beyond, the rest is left unread and the
    answer is invalid (not repeated: the same request would get the same answer)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            response.close()
            raise InvalidAnswerError(
                [codec.Issue("", f"is larger than {MAX_ANSWER_BYTES} bytes: no OICP answer "
                                 "is; the rest was not read")],
                operation=op.name, http_status=response.status)
        chunks.append(chunk)
    return b"".join(chunks)


def _redirect(op: Operation, http_status: int, location: str | None) -> RedirectRefused:
    """The error for a 3xx answer: named with its target, never followed."""
    target = mask_text(location) if location else "no Location given"
    return RedirectRefused(
        f"Hubject answered HTTP {http_status} redirecting to {target}: redirects are never "
        "followed, the request was not sent there (check hubject.base_url)",
        status=http_status, location=location, operation=op.name,
    )


def _status_of(payload: Any) -> tuple[str, str | None, str | None] | None:
    """(code, description, additional info) of a parsed answer, if it has a StatusCode."""
    if not isinstance(payload, Mapping):
        return None
    code = payload.get("StatusCode")
    if not isinstance(code, Mapping) or not isinstance(code.get("Code"), str):
        return None
    description = code.get("Description")
    info = code.get("AdditionalInfo")
    return (
        code["Code"],
        description if isinstance(description, str) else None,
        info if isinstance(info, str) else None,
    )


def _code_label(oicp: tuple[str, str | None, str | None] | None) -> str:
    # Only codes of the status table become label values: a stray body cannot create
    # unbounded metric series.
    if oicp is None:
        return NONE
    return oicp[0] if oicp[0] in status.STATUS_CODES else "unknown"


def _parse(body: bytes) -> Any:
    try:
        return codec.parse_json(body)
    except codec.OicpValidationError:
        return None


@dataclass(slots=True)
class _Attempt:
    """The answer of the last attempt, read in full."""

    http_status: int
    body: bytes
    payload: Any
    oicp_status: tuple[str, str | None, str | None] | None
    retry_after: float | None
    #: Attempts made in the call this answer ended.
    attempts: int = 1


class HubjectClient:
    """Calls Hubject's OICP operations over mutual TLS; use as ``async with``.

    ``registry`` (or ``metrics``) chooses where metrics go; the default is
    prometheus-client's global registry. ``session`` shares an aiohttp session, which
    the client then does not close. ``tls`` shares a ``ClientTls``.
    ``rate_period_seconds`` is the window Hubject's per-minute limits count over; only
    tests shorten it. ``clock``, ``sleep`` and ``random`` are injectable for tests.
    """

    def __init__(
        self,
        config: HubjectConfig,
        *,
        session: aiohttp.ClientSession | None = None,
        registry: CollectorRegistry | None = None,
        metrics: HubjectMetrics | None = None,
        tls: ClientTls | None = None,
        rate_period_seconds: float = MINUTE,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = asyncio.sleep,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self._config = config
        self._session = session
        self._owns_session = session is None
        self._metrics = metrics or HubjectMetrics.for_registry(registry or REGISTRY)
        self._tls = tls
        self._clock = clock
        self._random = random
        self._gates: dict[str, OperationGate] = build_gates(
            config.rate_limits, period=rate_period_seconds, clock=clock, sleep=sleep
        )
        self._base_url = config.url
        self._watcher: asyncio.Task[None] | None = None

    @property
    def metrics(self) -> HubjectMetrics:
        """The metrics this client records into."""
        return self._metrics

    @property
    def tls(self) -> ClientTls:
        """The TLS state in force (loaded by ``start``)."""
        if self._tls is None:
            raise RuntimeError("HubjectClient is not started: use 'async with' or start()")
        return self._tls

    def gate(self, operation: str) -> OperationGate:
        """The rate limiter and lock of an operation (by name)."""
        return self._gates[find_operation(operation).name]

    async def start(self) -> None:
        """Load the certificates and open the session. Raises ``ConfigError`` if unusable."""
        plaintext = self._plaintext()
        if self._tls is None and not plaintext:
            self._tls = ClientTls(self._config, metrics=self._metrics)
            # Without traffic nothing would look at the files: keep rotation, the expiry
            # gauge and the 30/7-day warnings current in the background.
            self._watcher = asyncio.create_task(self._tls.watch(), name="hubject-cert-watch")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    ssl=self._tls.context() if self._tls is not None else True),
                trace_configs=[trace_config()],
                # Our own JSON encoder writes the body; nothing reads the environment.
                trust_env=False,
            )

    def _plaintext(self) -> bool:
        """Whether calls go over plain http (allowed only as configured); else https.

        Raises ``ConfigError`` for any other scheme, for http without
        ``hubject.insecure_plaintext``, and for plaintext in production: a CDR or an
        AuthorizeStart in clear text, without a client certificate, is never sent by
        accident (config.py checks the same when the file is loaded).
        """
        scheme = yarl.URL(self._base_url).scheme.lower()
        if scheme == "https":
            return False
        if scheme != "http":
            raise ConfigError("hubject.base_url",
                              f"must start with https:// (got {mask_text(self._base_url)!r})")
        if not self._config.insecure_plaintext:
            raise ConfigError(
                "hubject.base_url",
                f"{mask_text(self._base_url)!r} is plain http: Hubject is called over https "
                "with mutual TLS only (hubject.insecure_plaintext = true allows http for a "
                "local test proxy, never in production)")
        if self._config.environment == "production":
            raise ConfigError("hubject.insecure_plaintext",
                              'is refused with environment = "production"')
        _log.warning(
            "INSECURE: calls to Hubject go over plain http, unencrypted and without a "
            "client certificate (hubject.insecure_plaintext = true); use this only with a "
            "local test proxy", base_url=self._base_url,
        )
        return True

    async def close(self) -> None:
        """Stop the certificate watch and close the session if the client made it."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        if self._session is not None and self._owns_session:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def url(self, operation: Operation, *, operator_id: str | None = None,
            provider_id: str | None = None) -> str:
        """The full URL of ``operation`` for the given (or configured) OperatorID."""
        params: dict[str, str] = {}
        if "{operatorID}" in operation.path:
            value = operator_id or self._config.operator_id
            if not value:
                raise ConfigError("hubject.operator_id",
                                  f"is required to call {operation.name}")
            params["operatorID"] = value
        if "{providerID}" in operation.path:
            if not provider_id:
                raise ConfigError("provider_id", f"is required to call {operation.name}")
            params["providerID"] = provider_id
        try:
            path = operation.url_path(**params)
        except ValueError as exc:
            key = "provider_id" if "providerID" in params else "hubject.operator_id"
            raise ConfigError(key, str(exc)) from exc
        return self._base_url + path

    async def call(
        self,
        operation: str | Operation,
        request: Any,
        *,
        operator_id: str | None = None,
        provider_id: str | None = None,
    ) -> Any:
        """Send ``request`` (an OICP model) as ``operation``; return the decoded answer.

        Raises ``OicpStatusError`` when Hubject answers with Result false or an error
        code, ``InvalidAnswerError`` for a malformed answer, a ``HubjectTransportError``
        when no usable answer came (after the retries the policy allows).
        AuthorizeStart/Stop answers with a business code (NotAuthorized with 102, ...)
        are returned, not raised: they are Hubject's decision.
        """
        op = operation if isinstance(operation, Operation) else find_operation(operation)
        expected = messages.request_classes(op)
        if not isinstance(request, expected):
            names = ", ".join(c.__name__ for c in expected)
            raise TypeError(f"{op.name} sends {names}, not {type(request).__name__}")
        url = self.url(op, operator_id=operator_id, provider_id=provider_id)
        if op.serialized:
            # Pushes carry whole record lists (a full load can be megabytes): written on a
            # worker thread, so that small calls (a remote start's answer) are not held up.
            body = await asyncio.to_thread(codec.encode, request)
        else:
            body = codec.encode(request)
        gate = self._gates[op.name]
        lock = gate.lock if gate.lock is not None else contextlib.nullcontext()
        # Serialized operations hold their lock across every attempt: the next push
        # starts only after this one's final answer (design.md, acceptable use).
        async with lock:
            attempt = await self._send(op, gate, url, body)
        return self._interpret(op, attempt)

    async def _send(self, op: Operation, gate: OperationGate, url: str, body: bytes) -> _Attempt:
        if self._session is None:
            raise RuntimeError("HubjectClient is not started: use 'async with' or start()")
        state = retry_policy.CallState(op)
        last: list[_Attempt] = []
        session = self._session
        metrics = self._metrics
        tls = self._tls
        timeout = aiohttp.ClientTimeout(
            total=self._config.timeout_seconds, connect=self._config.connect_timeout_seconds
        )

        async def request(method: str, url: Any, **kwargs: Any) -> aiohttp.ClientResponse:
            # One HTTP attempt, as aiohttp-retry calls it.
            kwargs.pop("trace_request_ctx", None)
            state.attempt += 1
            state.error = None
            state.verdict = None
            if gate.limiter is None:
                return await attempt(method, url, **kwargs)
            # The slot is held until the answer: see ratelimit's module docstring.
            async with gate.limiter.slot() as waited:
                if waited > 0:
                    metrics.rate_limit_waits.labels(op.name).inc()
                    metrics.rate_limit_wait_seconds.labels(op.name).inc(waited)
                return await attempt(method, url, **kwargs)

        async def attempt(method: str, url: Any, **kwargs: Any) -> aiohttp.ClientResponse:
            trace = AttemptTrace()
            context: ssl.SSLContext | bool = True
            if tls is not None:
                context = tls.context()
                if (unusable := tls.unusable()) is not None:
                    # Hubject would refuse the handshake: say why without connecting.
                    raise ClientCertificateExpired(
                        f"not sent: our client certificate cannot be used: {unusable} "
                        "(hubject.client_cert)", operation=op.name)
            started = self._clock()
            if isinstance(kwargs.get("data"), bytes) and len(kwargs["data"]) > _STREAMED_BYTES:
                # aiohttp writes a large bytes body in one go, holding up the event loop;
                # from a file object it writes chunk by chunk. A fresh one per attempt.
                kwargs = {**kwargs, "data": io.BytesIO(kwargs["data"])}
            try:
                response = await session.request(
                    method, url, ssl=context, timeout=timeout, trace_request_ctx=trace,
                    # A redirect is never followed: it would re-send the request (a CDR,
                    # an AuthorizeStart) to a URL nobody configured, perhaps in clear text.
                    allow_redirects=False, **kwargs,
                )
                try:
                    data = await _read_answer(op, response)
                except BaseException:
                    response.close()
                    raise
            except (aiohttp.ClientError, OSError, TimeoutError, ssl.SSLError) as exc:
                error = await self._diagnose(op, exc, trace)
                state.error = error
                metrics.requests.labels(op.name, NONE, NONE).inc()
                _log.warning("request to Hubject failed", operation=op.name,
                             attempt=state.attempt, error=str(error),
                             error_type=type(error).__name__)
                raise error from exc
            metrics.latency.labels(op.name).observe(max(0.0, self._clock() - started))
            if 300 <= response.status <= 399:
                metrics.requests.labels(op.name, str(response.status), NONE).inc()
                raise _redirect(op, response.status, response.headers.get("Location"))
            payload = _parse(data)
            oicp = _status_of(payload)
            metrics.requests.labels(op.name, str(response.status), _code_label(oicp)).inc()
            retry_after = retry_policy.parse_retry_after(response.headers.get("Retry-After"))
            last[:] = [_Attempt(response.status, data, payload, oicp, retry_after)]
            _log.debug("Hubject answered", operation=op.name, attempt=state.attempt,
                       http_status=response.status, oicp_status=oicp[0] if oicp else None)
            return response

        def answer_status(_response: aiohttp.ClientResponse) -> tuple[str | None, float | None]:
            answer = last[0]
            return (answer.oicp_status[0] if answer.oicp_status else None), answer.retry_after

        def on_retry(reason: str, delay: float) -> None:
            metrics.retries.labels(op.name, reason).inc()
            _log.info("repeating request to Hubject", operation=op.name, reason=reason,
                      attempt=state.attempt, delay_seconds=round(delay, 3))

        options = retry_policy.OicpRetryOptions(
            state, self._config.retry, answer_status=answer_status, on_retry=on_retry,
            random=self._random,
        )
        retry_client = RetryClient(
            # aiohttp-retry only calls ``request`` on its session: each call is one attempt.
            client_session=cast(aiohttp.ClientSession, SimpleNamespace(request=request)),
            retry_options=options,
            logger=_RETRY_LOGGER,
        )
        try:
            async with retry_client.post(url, data=body, headers=_JSON_HEADERS):
                pass
        except HubjectTransportError as exc:
            exc.operation = op.name
            exc.attempts = state.attempt
            raise
        last[0].attempts = state.attempt
        return last[0]

    async def _diagnose(
        self, op: Operation, exc: BaseException, trace: AttemptTrace
    ) -> HubjectTransportError:
        """Our typed error for what aiohttp raised during one attempt."""
        chain = _chain(exc)
        name = op.name
        failures = [item for item in chain if isinstance(item, ssl.SSLCertVerificationError)]
        tls = self._tls is not None  # no TLS over an (allowed) plain http base URL
        if failures and tls:
            # aiohttp's wrapper is one too; the message is on the error it wraps.
            texts = [getattr(item, "verify_message", None) for item in failures]
            text = next((t for t in texts if t), str(failures[-1]))
            message = self.tls.describe_server_failure(text)
            return ServerCertificateUntrusted(message, operation=name)
        if tls and (reason := _alert_reason(chain)) is not None:
            explanation = self.tls.explain_rejection()
            cls = (ClientCertificateExpired
                   if "EXPIRED" in reason or explanation.expired
                   else ClientCertificateRejected)
            return cls(f"the server refused our client certificate ({reason}): "
                       f"{explanation.message}", operation=name)
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return ConnectTimeout(
                f"no connection to {self._base_url} within "
                f"{self._config.connect_timeout_seconds} s", operation=name)
        if isinstance(exc, aiohttp.ClientConnectorError):
            # A reset during the handshake is how a TLS 1.2 server without alerts
            # refuses a client certificate.
            if tls and _is_reset(chain) and (rejection := await self._rejection(name, exc)):
                return rejection
            if isinstance(exc, aiohttp.ClientConnectorSSLError | aiohttp.ClientSSLError):
                return TlsError(f"TLS handshake with {self._base_url} failed: {_cause(exc)}",
                                operation=name)
            return ConnectionFailed(f"cannot connect to {self._base_url}: {_cause(exc)}",
                                    operation=name)
        if isinstance(exc, TimeoutError):
            if trace.headers_sent is False:
                return ConnectTimeout(
                    f"no connection to {self._base_url} within "
                    f"{self._config.timeout_seconds} s", operation=name)
            return RequestTimeout(
                f"no answer within {self._config.timeout_seconds} s; Hubject may have "
                "processed the request", operation=name)
        if tls and _fresh_close(exc, trace) and (rejection := await self._rejection(name, exc)):
            # A TLS 1.3 server checks our certificate after our side of the handshake is
            # done (RFC 8446 §4.4.2.4): by then the request is on its way, and the refusal
            # arrives as an alert on the first read or, from servers that send no alert or
            # behind a link that loses it, as a reset or a close before any answer
            # ("Server disconnected"). The request never reached the application.
            return rejection
        if trace.headers_sent is False:
            return ConnectionFailed(f"connection to {self._base_url} failed before the "
                                    f"request was sent: {_cause(exc)}", operation=name)
        return ConnectionLost(f"connection to {self._base_url} lost before the answer: "
                              f"{_cause(exc)}", operation=name)

    async def _rejection(self, name: str, exc: BaseException) -> TlsError | None:
        """The certificate error a reset during or right after the handshake stands for.

        ``None`` when the reset was no refusal of our certificate. Decided locally when
        we have no certificate or an expired one; otherwise by a handshake-only probe
        (``probe_client_certificate``), since a server that resets without an alert
        looks the same as a dropped connection.
        """
        explanation = self.tls.explain_rejection()
        if not explanation.expired and self.tls.certificate is not None:
            accepted = await probe_client_certificate(
                self._base_url, self.tls.context(),
                give_up_after=min(self._config.connect_timeout_seconds, PROBE_TIMEOUT_SECONDS),
            )
            if accepted is not False:
                return None
        cls = ClientCertificateExpired if explanation.expired else ClientCertificateRejected
        return cls(f"the server closed the TLS connection without an answer ({_cause(exc)}): "
                   f"{explanation.message}", operation=name)

    def _interpret(self, op: Operation, attempt: _Attempt) -> Any:
        """The decoded answer of the final attempt, or the error it amounts to."""
        name = op.name
        oicp = attempt.oicp_status
        if not 200 <= attempt.http_status <= 299:
            if oicp is not None and oicp[0] != status.SUCCESS:
                raise OicpStatusError(*oicp, answer=attempt.payload, operation=name,
                                      http_status=attempt.http_status,
                                      attempts=attempt.attempts)
            transient = retry_policy.http_status_transient(attempt.http_status)
            excerpt = _excerpt(attempt.body)
            raise HttpStatusError(
                f"Hubject answered HTTP {attempt.http_status}"
                + (f" (retry after {attempt.retry_after:g} s)" if attempt.retry_after else "")
                + (f": {excerpt}" if excerpt else ""),
                status=attempt.http_status, body_excerpt=excerpt,
                retry_after=attempt.retry_after, transient=transient, operation=name,
                attempts=attempt.attempts,
            )
        if attempt.payload is None:
            raise InvalidAnswerError(
                [codec.Issue("", "is not valid UTF-8 JSON")], operation=name,
                http_status=attempt.http_status, body_excerpt=_excerpt(attempt.body))
        model = messages.response_class(op)
        try:
            answer: Any = codec.load(model, attempt.payload)
        except codec.OicpValidationError as exc:
            if oicp is not None and oicp[0] != status.SUCCESS:
                # Malformed but clearly a refusal: report the refusal.
                raise OicpStatusError(*oicp, answer=attempt.payload, operation=name,
                                      attempts=attempt.attempts) from exc
            raise InvalidAnswerError(exc.issues, operation=name,
                                     http_status=attempt.http_status,
                                     body_excerpt=_excerpt(attempt.body)) from exc
        return self._check_status(op, answer, attempt)

    def _check_status(self, op: Operation, answer: Any, attempt: _Attempt) -> Any:
        """The answer as the connector acts on it, or the ``OicpStatusError`` it amounts to.

        Answers that break an OICP rule get the rule's defined outcome, logged and counted
        (``oicp.conformance``, severity "answer"): an unknown status code is passed on as
        it is, the Result or AuthorizationStatus deciding; an Authorized answer without a
        SessionID is NotAuthorized.
        """
        code_obj = answer.status_code
        code: str = code_obj.code
        known = code in status.STATUS_CODES
        if not known:
            self._protocol_error(op, status.UNKNOWN_STATUS_CODE, code=code)
        if hasattr(answer, "result"):
            failed = not answer.result or (known and code != status.SUCCESS)
        else:
            # AuthorizationStart/Stop: NotAuthorized with an authentication or session
            # code is Hubject's decision and is returned; platform and data errors, and
            # transient codes, are errors.
            info = status.describe(code)
            failed = known and code != status.SUCCESS and (
                info.area in (status.Area.GENERAL, status.Area.INTERNAL) or info.transient
            )
        if failed:
            raise OicpStatusError(code, code_obj.description, code_obj.additional_info,
                                  answer=answer, operation=op.name,
                                  http_status=attempt.http_status, attempts=attempt.attempts)
        if isinstance(answer, AuthorizationStart):
            answer, broken = checked_answer(answer)
            if broken is not None:
                self._protocol_error(op, broken)
        return answer

    def _protocol_error(self, op: Operation, rule: SpecRule, **values: object) -> None:
        self._metrics.protocol_errors.labels(operation=op.name, rule=rule.id).inc()
        _log.warning("answer from Hubject breaks an OICP rule", operation=op.name, rule=rule.id,
                     outcome=rule.message(**values))


async def probe_client_certificate(
    base_url: str, context: ssl.SSLContext, *, give_up_after: float = 2.0
) -> bool | None:
    """Whether the server accepts our client certificate, by a handshake and no request.

    Used only to explain a connection reset: no HTTP request is sent, so this is no
    call to Hubject. True: accepted (TLS 1.2 handshake done, or a TLS 1.3 session ticket
    arrived, which a server sends only after verifying us). False: the server reset or
    closed the connection. None: no sign either way within ``give_up_after`` seconds.
    """
    url = yarl.URL(base_url)
    host = url.host or "localhost"
    port = url.port or 443
    loop = asyncio.get_running_loop()
    deadline = loop.time() + give_up_after
    try:
        async with asyncio.timeout(give_up_after):
            reader, writer = await asyncio.open_connection(
                host, port, ssl=context, server_hostname=host)
    except TimeoutError:
        return None
    except (OSError, ssl.SSLError) as exc:
        chain = _chain(exc)
        return False if _is_reset(chain) or _alert_reason(chain) is not None else None
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        if ssl_object is not None and ssl_object.version() != "TLSv1.3":
            # Before TLS 1.3 the server verifies us within the handshake just completed.
            return True
        while loop.time() < deadline:
            try:
                data = await asyncio.wait_for(reader.read(1), _PROBE_POLL_SECONDS)
            except TimeoutError:
                session = ssl_object.session if ssl_object is not None else None
                if session is not None and session.has_ticket:
                    return True
                continue
            except (OSError, ssl.SSLError):
                return False
            return False if not data else None
        return None
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


def _alert_reason(chain: list[BaseException]) -> str | None:
    """The OpenSSL reason of the first alert in ``chain`` refusing our certificate."""
    for item in chain:
        reason = getattr(item, "reason", None)
        if isinstance(item, ssl.SSLError) and isinstance(reason, str) and any(
            alert in reason for alert in _CLIENT_CERT_ALERTS
        ):
            return reason
    return None


def _fresh_close(exc: BaseException, trace: AttemptTrace) -> bool:
    """A reset or a close on a connection just made, before any answer."""
    if (trace.fresh_connection is not True or trace.response_started is True
            or isinstance(exc, TimeoutError)):
        return False
    chain = _chain(exc)
    return _is_reset(chain) or any(
        isinstance(item, aiohttp.ServerDisconnectedError) for item in chain)


class _RetryLogger:
    """aiohttp-retry's debug lines, sent nowhere: our own logs say more."""

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """Drop."""

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """Drop."""

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """Drop."""


_RETRY_LOGGER: Final = _RetryLogger()

__all__ = ["AttemptTrace", "HubjectClient", "trace_config"]
