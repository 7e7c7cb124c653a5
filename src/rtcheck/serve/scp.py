"""The DICOM side: a pynetdicom application entity (Storage SCP and Verification SCP).

Accepted: the SOP classes of :data:`rtcheck.serve.objects.ACCEPTED_SOP_CLASSES` (RT Plan,
RT Ion Plan, RT Dose, RT Structure Set, RT (Ion) Beams Treatment Record) in the uncompressed
transfer syntaxes, and Verification (C-ECHO). Refused, and recorded as events for the page:

- an association from a calling AE title not in ``--allow`` (A-ASSOCIATE-RJ, rejected
  permanent, "calling AE title not recognised");
- any other SOP class: its presentation context is rejected ("abstract syntax not
  supported"), so the sender cannot send it;
- an object that cannot be decoded or whose dose cannot be read (C-STORE 0xC000), whose
  SOPClassUID is not the class it was sent as (0xA900), or that cannot be written
  (0xA700).
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

from rtcheck.serve import ServeError
from rtcheck.serve.node import Node
from rtcheck.serve.objects import (
    ACCEPTED_SOP_CLASSES,
    STATUS_CANNOT_UNDERSTAND,
    VERIFICATION,
)

log = logging.getLogger("rtcheck.serve")
#: How many refused SOP classes an association's event names.
REFUSED_SHOWN = 5


def _sop_name(uid: str) -> str:
    from pydicom.uid import UID

    name = UID(uid).name
    return f"{name} ({uid})" if name and name != uid else uid


def _calling_ae(event: Any) -> str:
    title = event.assoc.requestor.ae_title
    return (title.decode("ascii", "replace") if isinstance(title, bytes) else str(title)).strip()


def handlers(node: Node) -> list[Any]:
    """The event handlers that connect pynetdicom to the node."""
    from pynetdicom import evt

    def on_store(event: Any) -> int:
        calling = _calling_ae(event)
        try:
            ds = event.dataset
            data = event.encoded_dataset(include_meta=True)
        except Exception as exc:  # the bytes cannot be decoded: a truncated object
            node.refused(f"object from {calling} cannot be decoded ({type(exc).__name__}: "
                         f"{exc}); C-STORE status 0x{STATUS_CANNOT_UNDERSTAND:04X}", calling)
            return STATUS_CANNOT_UNDERSTAND
        return node.receive(ds, event.context.abstract_syntax, data, calling, id(event.assoc))

    def on_echo(event: Any) -> int:
        return 0x0000

    def on_accepted(event: Any) -> None:
        calling = _calling_ae(event)
        refused = sorted({_sop_name(c.abstract_syntax) for c in event.assoc.rejected_contexts})
        if refused:  # one line per association: dcmtk's storescu proposes ~120 classes
            shown = "; ".join(refused[:REFUSED_SHOWN])
            more = f" and {len(refused) - REFUSED_SHOWN} more" if len(refused) > REFUSED_SHOWN else ""
            node.refused(f"{calling} proposed {len(refused)} SOP class(es) the node does not "
                         f"accept (presentation contexts rejected: objects of these classes "
                         f"cannot be sent to it): {shown}{more}", calling, level="warning")

    def on_rejected(event: Any) -> None:
        calling = _calling_ae(event)
        address = event.assoc.requestor.address
        node.refused(f"association from calling AE {calling!r} ({address}) rejected: not in "
                     "--allow", calling)

    def on_closed(event: Any) -> None:
        node.association_ended(id(event.assoc))

    return [(evt.EVT_C_STORE, on_store), (evt.EVT_C_ECHO, on_echo),
            (evt.EVT_ACCEPTED, on_accepted), (evt.EVT_REJECTED, on_rejected),
            (evt.EVT_CONN_CLOSE, on_closed)]


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """A server TLS context from a certificate and its key (PEM).

    Raises
    ------
    ServeError
        The files cannot be read or do not match.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ServeError(f"--tls-cert {cert} / --tls-key {key}: cannot be used ({exc})") from exc
    return context


def start_scp(node: Node) -> Any:
    """Start the Storage SCP in its own threads; returns the server (``shutdown()`` stops it).

    Raises
    ------
    ServeError
        The port cannot be bound (in use, not allowed), the AE title is invalid, TLS files
        cannot be read.
    """
    from pynetdicom import AE
    from pynetdicom.presentation import DEFAULT_TRANSFER_SYNTAXES

    config = node.config
    try:
        ae = AE(ae_title=config.ae_title)
    except ValueError as exc:
        raise ServeError(f"--ae-title {config.ae_title!r}: {exc}") from exc
    for uid in ACCEPTED_SOP_CLASSES:
        ae.add_supported_context(uid, DEFAULT_TRANSFER_SYNTAXES)
    ae.add_supported_context(VERIFICATION)
    if config.allow:
        ae.require_calling_aet = list(config.allow)
    ae.maximum_associations = 16
    ssl_context = (tls_context(config.tls_cert, config.tls_key)
                   if config.tls_cert and config.tls_key else None)
    try:
        return ae.start_server((config.dicom_host, config.dicom_port), block=False,
                               evt_handlers=handlers(node), ssl_context=ssl_context)
    except OSError as exc:
        raise ServeError(f"--dicom-port {config.dicom_port}: cannot listen on "
                         f"{config.dicom_host}:{config.dicom_port} ({exc.strerror or exc})"
                         ) from exc
