#!/usr/bin/env python3
"""Cross-implementation JOSE checks for etdi-crypto, driven by
etdi-crypto/tests/interop_python.rs.

The Rust test writes one JSON document of jobs to standard input and reads
one JSON document of results from standard output. Two kinds of job:

* ``verify``: a compact JWS made by etdi-crypto, the signer's public JWK, the
  expected ``alg`` and ``typ``. It is verified twice, independently: with
  jwcrypto (a full JOSE library), and with ``cryptography`` directly on the
  signing input (JOSE ``r || s`` converted to DER for ECDSA), so a bug shared
  by one library and etdi-crypto cannot hide. The RFC 7638 thumbprint that
  jwcrypto computes for the JWK is returned so the Rust side can compare it
  with its own ``kid``.
* ``sign``: jwcrypto generates a fresh key for ``alg``, signs the given
  claims with the given ``typ`` and returns the token with the public JWK
  and its thumbprint (used as ``kid``); the Rust side then verifies the token
  with its ETDI verifiers.

Nothing here reaches the network.
"""

import base64
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from jwcrypto import jwk, jws

HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
FIELD_LEN = {"ES256": 32, "ES384": 48, "ES512": 66}


def b64url_decode(part):
    # Strict: JOSE compact parts are unpadded base64url.
    if "=" in part:
        raise ValueError("padded base64url")
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def generate(alg):
    if alg.startswith("RS"):
        return jwk.JWK.generate(kty="RSA", size=2048)
    return jwk.JWK.generate(kty="EC", crv=CURVES[alg])


def raw_verify(token, public_jwk, alg):
    """Verify with `cryptography` only, no JOSE library involved."""
    header_b64, payload_b64, sig_b64 = token.split(".")
    signing_input = (header_b64 + "." + payload_b64).encode("ascii")
    sig = b64url_decode(sig_b64)
    key = jwk.JWK(**public_jwk).get_op_key("verify")
    digest = HASHES[alg[2:]]()
    try:
        if alg.startswith("RS"):
            key.verify(sig, signing_input, padding.PKCS1v15(), digest)
        else:
            n = FIELD_LEN[alg]
            if len(sig) != 2 * n:
                return False
            r = int.from_bytes(sig[:n], "big")
            s = int.from_bytes(sig[n:], "big")
            key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(digest))
    except InvalidSignature:
        return False
    return True


def do_verify(job):
    token = job["token"]
    public = jwk.JWK(**job["jwk"])
    alg = job["alg"]
    out = {"id": job["id"], "thumbprint": public.thumbprint()}
    try:
        obj = jws.JWS()
        obj.deserialize(token)
        obj.verify(public, alg=alg)
        header = obj.jose_header
        out["jwcrypto_ok"] = True
        out["header"] = header
        out["claims"] = json.loads(obj.payload)
        out["typ_ok"] = header.get("typ") == job["typ"]
    except Exception as e:  # noqa: BLE001 - any failure is a failed check
        out["jwcrypto_ok"] = False
        out["error"] = f"{type(e).__name__}: {e}"
    out["raw_ok"] = raw_verify(token, job["jwk"], alg)
    # A tampered copy must fail in both verifiers (guards against a verifier
    # that accepts everything).
    h, p, s = token.split(".")
    flipped = h + "." + p + "." + ("A" if s[0] != "A" else "B") + s[1:]
    try:
        obj = jws.JWS()
        obj.deserialize(flipped)
        obj.verify(public, alg=alg)
        out["tampered_rejected"] = False
    except Exception:  # noqa: BLE001
        out["tampered_rejected"] = not raw_verify(flipped, job["jwk"], alg)
    return out


def do_sign(job):
    alg = job["alg"]
    key = generate(alg)
    kid = key.thumbprint()
    protected = {"alg": alg, "typ": job["typ"], "kid": kid}
    obj = jws.JWS(json.dumps(job["claims"], separators=(",", ":")).encode("utf-8"))
    obj.add_signature(key, alg=None, protected=json.dumps(protected))
    token = obj.serialize(compact=True)
    return {
        "id": job["id"],
        "token": token,
        "jwk": json.loads(key.export_public()),
        "kid": kid,
    }


def main():
    jobs = json.load(sys.stdin)
    results = []
    for job in jobs:
        if job["op"] == "verify":
            results.append(do_verify(job))
        elif job["op"] == "sign":
            results.append(do_sign(job))
        else:
            raise SystemExit(f"unknown op {job['op']!r}")
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
