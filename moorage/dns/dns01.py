"""A certificate by ACME DNS-01 through a DNS provider (RFC 8555 section 8.4), for the
names Caddy cannot get alone: wildcards, whose challenge is a TXT record at
``_acme-challenge.<name>`` that only the zone's provider can write. The ACME protocol is
the ``acme`` library's (certbot's); Moorage only writes and removes the TXT records and
keeps the account key (``<data>/proxy/acme-account.pem``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import cast

from acme import challenges, client, crypto_util, errors, messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy.jwk import JWKRSA

from moorage.plugins.spec import DnsError, DnsZone

log = logging.getLogger("moorage.dns")
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
TXT_TTL = 60


class AcmeFailed(Exception):
    """The CA refused or the challenge failed; the message says why."""


def _account_key(path: Path) -> JWKRSA:
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        return JWKRSA(key=cast(rsa.RSAPrivateKey, key))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    path.chmod(0o600)
    return JWKRSA(key=key)


def obtain(
    zone: DnsZone,
    host: str,
    *,
    account_key: Path,
    directory: str | None,
    email: str | None,
    ca_root: Path | None,
) -> tuple[str, str]:
    """A certificate for ``host`` (``*.example.com`` also covers nothing else) by DNS-01
    through ``zone``: returns ``(fullchain PEM, private key PEM)``. The TXT record is
    removed again whatever happens. Raises AcmeFailed or DnsError."""
    key = _account_key(account_key)
    verify: bool | str = str(ca_root) if ca_root is not None else True
    net = client.ClientNetwork(key, user_agent="moorage", verify_ssl=cast(bool, verify))
    try:
        acme = client.ClientV2(client.ClientV2.get_directory(directory or LETS_ENCRYPT, net), net)
        registration = messages.NewRegistration.from_data(email=email, terms_of_service_agreed=True)
        try:
            net.account = acme.new_account(registration)
        except errors.ConflictError as exc:  # this key has an account already
            net.account = acme.query_registration(messages.RegistrationResource(uri=exc.location))
        cert_key = ec.generate_private_key(ec.SECP256R1())
        key_pem = cert_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        order = acme.new_order(crypto_util.make_csr(key_pem, [host]))
        written: list[tuple[str, str]] = []
        try:
            for authz in order.authorizations:
                challenge = next(
                    (c for c in authz.body.challenges if isinstance(c.chall, challenges.DNS01)),
                    None,
                )
                if challenge is None:
                    raise AcmeFailed(f"the CA offers no DNS-01 challenge for {host}")
                dns01 = cast(challenges.DNS01, challenge.chall)
                name = dns01.validation_domain_name(authz.body.identifier.value)
                value = dns01.validation(key)
                zone.add(name, "TXT", value, TXT_TTL)
                written.append((name, value))
                acme.answer_challenge(challenge, dns01.response(key))
            done = acme.poll_and_finalize(order)  # polls for up to 90 s
        finally:
            for name, value in written:
                try:
                    zone.remove(name, "TXT", value)
                except DnsError as exc:
                    log.warning("could not remove the challenge record %s: %s", name, exc)
    except errors.Error as exc:
        raise AcmeFailed(f"ACME: {exc}") from None
    except messages.Error as exc:
        raise AcmeFailed(f"the CA refused: {exc}") from None
    return done.fullchain_pem, key_pem.decode()
