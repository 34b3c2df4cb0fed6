"""``speciosa oauth``: register and remove the OAuth clients of the SMART on FHIR API.

- ``speciosa oauth add-app NAME --redirect-uri URI [--redirect-uri URI ...] [--confidential]
  [--launch-uri URI]``: a SMART app (authorization code with PKCE S256; patient/ and user/
  scopes within the role of whoever logs in). Prints the client id, and for a confidential
  client its secret, once.
- ``speciosa oauth add-backend NAME --site SITE --jwks FILE [--purpose TEXT]``: a SMART
  Backend Services client (client credentials with a JWT signed RS384 or ES384 by a key of
  the JWKS file; system/ scopes; never more than the site's patients). ``--purpose`` is
  recorded with its bulk exports when a request names none.
- ``speciosa oauth list [--json]`` and ``speciosa oauth remove CLIENT_ID`` (its tokens end
  with it).

Every change is written to the audit trail (``model="OAuthClient"``).
"""

from __future__ import annotations

import argparse
import getpass
import json
from pathlib import Path
from typing import Any

from speciosa.cli import UsageError


def register(subparsers: Any) -> None:
    """Add ``oauth add-app``, ``oauth add-backend``, ``oauth list`` and ``oauth remove``."""
    group = subparsers.add_parser("oauth", help="OAuth clients of the SMART on FHIR API",
                                  description="Register, list and remove SMART on FHIR clients.")
    group.set_defaults(func=lambda args, _p=group: (_p.print_help(), 2)[1])
    sub = group.add_subparsers(dest="oauth_command", metavar="ACTION")

    p = sub.add_parser("add-app", help="a SMART app (authorization code with PKCE)")
    p.add_argument("name", help="the app's name, shown on the authorize page")
    p.add_argument("--redirect-uri", action="append", required=True, metavar="URI",
                   help="where the app receives the code (https; repeat for several)")
    p.add_argument("--confidential", action="store_true",
                   help="a server-side app that keeps a client secret (default: public)")
    p.add_argument("--launch-uri", default="", metavar="URI",
                   help="the app's launch URL, for an EHR launch from a patient's page")
    p.add_argument("--json", action="store_true", help="print the client as JSON")
    p.set_defaults(func=cmd_oauth_add_app)

    p = sub.add_parser("add-backend", help="a SMART Backend Services client (signed JWT)")
    p.add_argument("name", help="the system's name")
    p.add_argument("--site", required=True, help="the one site whose patients it may reach")
    p.add_argument("--jwks", required=True, metavar="FILE",
                   help="JSON Web Key Set with the client's PUBLIC keys (RS384 or ES384)")
    p.add_argument("--purpose", default="", metavar="TEXT",
                   help="purpose of use recorded with its bulk exports when a request names none")
    p.add_argument("--json", action="store_true", help="print the client as JSON")
    p.set_defaults(func=cmd_oauth_add_backend)

    p = sub.add_parser("list", help="the registered clients")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_oauth_list)

    p = sub.add_parser("remove", help="remove a client (its tokens stop working)")
    p.add_argument("client_id")
    p.set_defaults(func=cmd_oauth_remove)


def _audit(what: str, **after) -> None:
    from speciosa.clinic.models import AuditEntry

    AuditEntry.objects.create(user=None, action=AuditEntry.Action.CREDENTIALS,
                              model="OAuthClient", reason=what,
                              after={"os_user": getpass.getuser(), **after})


def _check_uri(uri: str, name: str) -> str:
    from django.conf import settings
    from django.core.exceptions import ValidationError
    from django.core.validators import URLValidator

    schemes = settings.OAUTH2_PROVIDER["ALLOWED_REDIRECT_URI_SCHEMES"]
    try:
        URLValidator(schemes=schemes)(uri)
    except ValidationError:
        raise UsageError(f"{name} {uri!r} is not a URL with {' or '.join(schemes)}") from None
    return uri


def _print(client: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(client))
        return
    for key, value in client.items():
        print(f"{key:<14} {value}")


def cmd_oauth_add_app(args: argparse.Namespace) -> int:
    from speciosa.commands.server import setup_django

    setup_django()
    from django.db import transaction
    from oauth2_provider.generators import generate_client_secret
    from oauth2_provider.models import Application

    from speciosa.interop.models import SmartClient

    uris = [_check_uri(u, "--redirect-uri") for u in args.redirect_uri]
    launch = _check_uri(args.launch_uri, "--launch-uri") if args.launch_uri else ""
    secret = generate_client_secret() if args.confidential else ""
    with transaction.atomic():
        app = Application.objects.create(
            name=args.name[:255], redirect_uris=" ".join(uris),
            client_type=(Application.CLIENT_CONFIDENTIAL if args.confidential
                         else Application.CLIENT_PUBLIC),
            authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
            client_secret=secret, algorithm=Application.RS256_ALGORITHM)
        SmartClient.objects.create(application=app, kind=SmartClient.Kind.APP, launch_uri=launch)
        _audit("SMART app registered", client_id=app.client_id, name=app.name)
    out = {"client_id": app.client_id, "kind": "app", "name": app.name,
           "redirect_uris": " ".join(uris)}
    if secret:
        out["client_secret"] = secret  # shown once: only its hash is kept
    _print(out, args.json)
    return 0


def _public_jwks(path: str) -> dict:
    import jwt

    try:
        jwks = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise UsageError(f"{path} is not JSON (a JSON Web Key Set: {{\"keys\": [...]}})") from None
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        raise UsageError(f"{path}: a JSON Web Key Set has a non-empty \"keys\" list")
    for i, key in enumerate(keys):
        if not isinstance(key, dict) or "d" in key:
            raise UsageError(f"{path}: key {i} is a PRIVATE key; register only the public keys")
        if key.get("kty") not in ("RSA", "EC"):
            raise UsageError(f"{path}: key {i} must be an RSA or EC key (RS384 or ES384)")
    try:
        jwt.PyJWKSet.from_dict(jwks)
    except jwt.PyJWTError as exc:
        raise UsageError(f"{path}: not a usable key set ({exc})") from None
    return {"keys": keys}


def cmd_oauth_add_backend(args: argparse.Namespace) -> int:
    from speciosa.commands.server import setup_django

    setup_django()
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from oauth2_provider.generators import generate_client_id, generate_client_secret
    from oauth2_provider.models import Application

    from speciosa.clinic.models import Site
    from speciosa.interop.models import SmartClient

    site = Site.objects.filter(name=args.site).first()
    if site is None:
        known = ", ".join(Site.objects.order_by("name").values_list("name", flat=True))
        raise UsageError(f"no site named {args.site!r}; sites: {known or 'none'}")
    jwks = _public_jwks(args.jwks)
    client_id = generate_client_id()
    with transaction.atomic():
        # its service login: no password, no role (it reaches nothing by any other way in)
        service = get_user_model().objects.create_user(username=f"oauth-{client_id[:40]}",
                                                       first_name=args.name[:150])
        service.set_unusable_password()
        service.save()
        app = Application.objects.create(
            name=args.name[:255], client_id=client_id, user=service,
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
            # a secret nobody knows: the client proves itself with its signed JWT only
            client_secret=generate_client_secret(), algorithm=Application.NO_ALGORITHM)
        SmartClient.objects.create(application=app, kind=SmartClient.Kind.BACKEND, site=site,
                                   jwks=jwks, purpose=args.purpose.strip()[:300])
        _audit("SMART backend client registered", client_id=client_id, name=app.name,
               site=site.name)
    _print({"client_id": client_id, "kind": "backend", "name": app.name, "site": site.name,
            "keys": len(jwks["keys"])}, args.json)
    return 0


def cmd_oauth_list(args: argparse.Namespace) -> int:
    from speciosa.commands.server import setup_django

    setup_django()
    from speciosa.interop.models import SmartClient

    rows = [{"client_id": c.application.client_id, "kind": c.kind, "name": c.application.name,
             "site": c.site.name if c.site else "",
             "redirect_uris": c.application.redirect_uris, "launch_uri": c.launch_uri}
            for c in SmartClient.objects.select_related("application", "site").order_by("pk")]
    if args.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            print(f"{r['client_id']}  {r['kind']:<8} {r['name']}"
                  + (f"  site: {r['site']}" if r["site"] else "")
                  + (f"  redirect: {r['redirect_uris']}" if r["redirect_uris"] else ""))
        if not rows:
            print("No OAuth clients are registered (speciosa oauth add-app / add-backend).")
    return 0


def cmd_oauth_remove(args: argparse.Namespace) -> int:
    from speciosa.commands.server import setup_django

    setup_django()
    from django.db import transaction
    from oauth2_provider.models import Application

    from speciosa.interop.models import SmartClient

    app = Application.objects.filter(client_id=args.client_id).first()
    if app is None:
        raise UsageError(f"no OAuth client {args.client_id!r} (see speciosa oauth list)")
    with transaction.atomic():
        service = app.user if SmartClient.objects.filter(
            application=app, kind=SmartClient.Kind.BACKEND).exists() else None
        name = app.name
        app.delete()  # its grants and tokens go with it
        if service is not None:
            service.is_active = False
            service.save(update_fields=["is_active"])
        _audit("OAuth client removed", client_id=args.client_id, name=name)
    print(f"Removed {name} ({args.client_id}); its tokens no longer work.")
    return 0
