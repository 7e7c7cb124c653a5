"""``rtcheck serve``: a DICOM node that checks every plan it receives (see
:mod:`rtcheck.serve`)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from rtcheck.cli.common import CommandError, OneLineCommand

#: The environment variable that may hold the HTTP access token.
TOKEN_VARIABLE = "RTCHECK_TOKEN"


def _http_address(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) -> (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise CommandError(f"--http {value!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


@click.command("serve", cls=OneLineCommand)
@click.option("--store", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder of the received objects and the node's index (created if missing).")
@click.option("--ae-title", default="RTCHECK", show_default=True,
              help="The node's AE title (what the planning system sends to).")
@click.option("--dicom-host", default="0.0.0.0", show_default=True,
              help="Address the DICOM port listens on.")
@click.option("--dicom-port", type=click.IntRange(0, 65535), default=11112, show_default=True,
              help="DICOM port (0: any free port, printed at start).")
@click.option("--allow", "allow", multiple=True, metavar="CALLING_AE",
              help="Accept associations only from this calling AE title (repeatable); "
                   "others are rejected. Default: any.")
@click.option("--http", "http", default="127.0.0.1:8080", show_default=True,
              metavar="HOST:PORT",
              help="Address of the page and the JSON API. Anything but loopback needs a token.")
@click.option("--token", default=None, metavar="TOKEN",
              help=f"Access token every HTTP request must carry (default: ${TOKEN_VARIABLE}).")
@click.option("--protocol", "protocols", multiple=True, metavar="ID_OR_FILE",
              help="Protocol to check against (repeatable; default: the checker's default).")
@click.option("--facts", "facts", type=click.Path(exists=True, dir_okay=False),
              help="Per-plan facts, CSV or JSON, the format of rtcheck batch "
                   "--indication-from (keyed by plan_uid or patient_id).")
@click.option("--settle", type=click.FloatRange(min=0), default=60.0, show_default=True,
              metavar="SECONDS",
              help="Check an incomplete plan after SECONDS without new parts, with what "
                   "arrived (the missing parts named, their rules NOT_EVALUATED).")
@click.option("--check-timeout", type=click.FloatRange(min=0), default=600.0,
              show_default=True, metavar="SECONDS",
              help="A check still running after SECONDS is stopped: the plan's status is "
                   "error. 0: no limit.")
@click.option("--deidentify", is_flag=True,
              help="No patient names or IDs (nor UIDs) in the page, the API or the reports.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False),
              help="DICOM over TLS: the node's certificate (PEM), with --tls-key.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False),
              help="The certificate's private key (PEM).")
def serve(store, ae_title, dicom_host, dicom_port, allow, http, token, protocols, facts,
          settle, check_timeout, deidentify, tls_cert, tls_key):
    """A DICOM node that checks every plan it receives.

    A Storage SCP for RT Plan (photon and ion), RT Dose, RT Structure Set and RT Beams
    Treatment Record, and C-ECHO; other SOP classes are refused at association. Each
    object is written to STORE and indexed (SQLite) before it is acknowledged. A plan is
    checked as soon as its plan, dose(s) and structure set are there, or --settle seconds
    after its last part with what arrived. A plan sent again is checked again; every check
    is kept. Results: a page at --http, a JSON API (GET /api/plans, GET /api/plans/UID,
    POST /api/plans/UID/check with facts), each plan's HTML report.

    \b
    Examples:
      rtcheck serve --store /srv/rtcheck
      rtcheck serve --store /srv/rtcheck --ae-title RTCHECK --dicom-port 11112 \\
          --allow ECLIPSE --allow RAYSTATION --facts facts.csv --settle 120
      RTCHECK_TOKEN=s3cret rtcheck serve --store /srv/rtcheck --http 0.0.0.0:8080

    Stop it with Ctrl-C or SIGTERM. After any stop, a kill -9 included, the next start
    reconciles the index with the store and checks again what was not finished.
    """
    if bool(tls_cert) != bool(tls_key):
        raise CommandError("--tls-cert and --tls-key go together")
    try:
        from rtcheck.serve.node import NodeConfig
        from rtcheck.serve.server import serve as run
    except ImportError as exc:
        raise CommandError(f"rtcheck serve needs the serve extra: pip install "
                           f"'rtcheck[serve]' ({exc})") from exc
    from rtcheck.errors import RTCheckError

    http_host, http_port = _http_address(http)
    config = NodeConfig(
        store=store, ae_title=ae_title, dicom_host=dicom_host, dicom_port=dicom_port,
        allow=tuple(allow), http_host=http_host, http_port=http_port,
        token=token or os.environ.get(TOKEN_VARIABLE) or None, protocols=tuple(protocols),
        facts_file=facts, settle=settle, deidentify=deidentify, tls_cert=tls_cert,
        tls_key=tls_key, check_timeout=check_timeout or None)
    try:
        run(config)
    except RTCheckError as exc:
        raise CommandError(str(exc)) from exc
