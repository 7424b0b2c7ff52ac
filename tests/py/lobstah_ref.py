#!/usr/bin/env python3
"""An independent reference implementation of the lobstah wire protocol's cryptography.

Written from the specifications, not from the Rust code:
  - RFC 8785 (JSON Canonicalization Scheme): keys sorted by UTF-16 code units, no
    whitespace, strings escaped as ECMAScript JSON.stringify does (only \\" \\\\ \\b \\f \\n \\r
    \\t and \\u00XX for the other control characters; everything else written raw as UTF-8),
    numbers as ECMAScript Number.prototype.toString writes IEEE doubles.
  - Ed25519 (RFC 8032) via the `cryptography` package: a 32-byte seed gives the key, the
    signature covers the canonical UTF-8 bytes, and travels as 128 lowercase hex chars.
  - lobstah text forms: public keys are "lob1" + 64 lowercase hex chars.

Usage:
  lobstah_ref.py --selftest     RFC 8032 / RFC 8785 known answers; exit 0 when they pass.
  lobstah_ref.py                read JSON requests, one per line, from stdin; write one JSON
                                response per line to stdout (same "id"). See handle().

Exit status 3 means the `cryptography` package is missing: pip install cryptography
"""

import json
import math
import sys

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
except ImportError as e:  # pragma: no cover - depends on the machine
    sys.stderr.write(
        "lobstah_ref.py needs the Python package 'cryptography' (%s).\n"
        "Install it with: pip install cryptography\n" % e
    )
    sys.exit(3)

PUBKEY_PREFIX = "lob1"

# ---------------------------------------------------------------------------------------
# RFC 8785 canonical JSON
# ---------------------------------------------------------------------------------------

_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


class CanonicalError(ValueError):
    pass


def canonical_string(s):
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif code < 0x20:
            out.append("\\u%04x" % code)
        elif 0xD800 <= code <= 0xDFFF:
            # A lone surrogate cannot be written as UTF-8; RFC 8785 says: fail.
            raise CanonicalError("lone surrogate U+%04X in a string" % code)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def canonical_number(x):
    """ECMAScript Number::toString for an IEEE double (RFC 8785 section 3.2.2.3)."""
    if isinstance(x, int):
        if abs(x) <= 2**53:
            return str(x)
        # JSON numbers are IEEE doubles in JCS: large integers lose digits, as in JS.
        x = float(x)
    if math.isnan(x) or math.isinf(x):
        raise CanonicalError("NaN and Infinity are not JSON")
    if x == 0:
        return "0"  # also for -0
    sign = "-" if x < 0 else ""
    # repr() gives the shortest digit string that round-trips, as ECMAScript requires.
    text = repr(abs(x))
    if "e" in text:
        mantissa, exp_text = text.split("e")
        exp = int(exp_text)
    else:
        mantissa, exp = text, 0
    if "." in mantissa:
        int_part, frac_part = mantissa.split(".")
    else:
        int_part, frac_part = mantissa, ""
    digits = int_part + frac_part
    # The value is 0.<digits> * 10^point, before stripping zeros.
    point = len(int_part) + exp
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    s = stripped.rstrip("0")
    k, n = len(s), point
    # ECMA-262 Number::toString, steps for k digits s and exponent n.
    if k <= n <= 21:
        body = s + "0" * (n - k)
    elif 0 < n <= 21:
        body = s[:n] + "." + s[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + s
    else:
        e = n - 1
        exp_str = ("+" if e >= 0 else "-") + str(abs(e))
        body = (s if k == 1 else s[0] + "." + s[1:]) + "e" + exp_str
    return sign + body


def _utf16_key(key):
    return key.encode("utf-16-be", "surrogatepass")


def canonical(value):
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return canonical_number(value)
    if isinstance(value, str):
        return canonical_string(value)
    if isinstance(value, list):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value.keys(), key=_utf16_key)
        return (
            "{"
            + ",".join(canonical_string(k) + ":" + canonical(value[k]) for k in keys)
            + "}"
        )
    raise CanonicalError("not a JSON value: %r" % (value,))


def canonical_bytes(value):
    return canonical(value).encode("utf-8")


# ---------------------------------------------------------------------------------------
# Keys and signatures
# ---------------------------------------------------------------------------------------

_HEX = set("0123456789abcdef")


def _lower_hex(text, nbytes, what):
    if not isinstance(text, str) or len(text) != 2 * nbytes or not set(text) <= _HEX:
        raise ValueError("%s: expected %d lowercase hex characters" % (what, 2 * nbytes))
    return bytes.fromhex(text)


def private_key(seed_hex):
    return Ed25519PrivateKey.from_private_bytes(_lower_hex(seed_hex, 32, "seed"))


def pubkey_text(key):
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return PUBKEY_PREFIX + raw.hex()


def parse_pubkey(text):
    if not isinstance(text, str) or not text.startswith(PUBKEY_PREFIX):
        raise ValueError("public key must start with lob1")
    raw = _lower_hex(text[len(PUBKEY_PREFIX):], 32, "public key")
    return Ed25519PublicKey.from_public_bytes(raw)


def sign(seed_hex, message):
    return private_key(seed_hex).sign(message).hex()


def verify(pubkey, message, signature_hex):
    try:
        sig = _lower_hex(signature_hex, 64, "signature")
        parse_pubkey(pubkey).verify(sig, message)
        return True
    except (InvalidSignature, ValueError):
        return False


# Which field of each signed object names its signer.
_SIGNER_FIELD = {"receipt": "workerPubkey", "announcement": "pubkey"}


def verify_signed_text(kind, text):
    """Verifies a signed receipt/announcement given as JSON text, over the object as
    received (unknown fields included)."""
    try:
        outer = json.loads(text)
        body = outer[kind]
        if not isinstance(body, dict):
            return False
        return verify(body[_SIGNER_FIELD[kind]], canonical_bytes(body), outer["signature"])
    except (KeyError, TypeError, ValueError):
        return False


def sign_object(kind, seed_hex, body, pretty):
    """Signs `body` and writes the signed object as JSON text the way another
    implementation might: signature first, non-ASCII escaped, optional indentation."""
    sig = sign(seed_hex, canonical_bytes(body))
    outer = {"signature": sig, kind: body}
    if pretty:
        return json.dumps(outer, ensure_ascii=True, indent=2)
    return json.dumps(outer, ensure_ascii=False)


# ---------------------------------------------------------------------------------------
# Request loop
# ---------------------------------------------------------------------------------------


def handle(req):
    op = req["op"]
    if op == "canonical":
        return {"canonical": canonical_bytes(req["value"]).hex()}
    if op == "pubkey":
        return {"pubkey": pubkey_text(private_key(req["seed"]))}
    if op == "sign":
        message = canonical_bytes(req["value"])
        return {"canonical": message.hex(), "signature": sign(req["seed"], message)}
    if op == "sign_text":
        return {"signature": sign(req["seed"], req["text"].encode("utf-8"))}
    if op == "verify":
        return {"valid": verify(req["pubkey"], canonical_bytes(req["value"]), req["signature"])}
    if op == "sign_signed":
        return {
            "signed": sign_object(req["kind"], req["seed"], req["body"], req.get("pretty", False))
        }
    if op == "verify_signed":
        return {"valid": verify_signed_text(req["kind"], req["signed"])}
    raise ValueError("unknown op %r" % op)


def serve():
    data = sys.stdin.buffer.read().decode("utf-8")
    out = []
    # Not splitlines(): it also splits on U+2028, U+0085 and others that JSON text may
    # carry raw inside strings.
    for line in data.split("\n"):
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            resp = handle(req)
        except Exception as e:  # reported per request, so the caller sees which one
            resp = {"error": "%s: %s" % (type(e).__name__, e)}
        resp["id"] = req.get("id")
        out.append(json.dumps(resp, ensure_ascii=True))
    sys.stdout.buffer.write(("\n".join(out) + "\n").encode("utf-8"))
    sys.stdout.buffer.flush()


# ---------------------------------------------------------------------------------------
# Known answers
# ---------------------------------------------------------------------------------------


def selftest():
    # RFC 8032 section 7.1, TEST 1 (empty message).
    seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
    assert pubkey_text(private_key(seed)) == (
        "lob1d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    )
    sig = sign(seed, b"")
    assert sig == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bac"
        "c61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    ), sig
    assert verify(pubkey_text(private_key(seed)), b"", sig)
    assert not verify(pubkey_text(private_key(seed)), b"x", sig)

    # RFC 8785 section 3.2.2: the sample object.
    sample = json.loads(
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    want = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    got = canonical(sample)
    assert got == want, got

    # RFC 8785 section 3.2.3: sorting by UTF-16 code units.
    keys = json.loads(
        '{"\\u20ac":1,"\\r":2,"\\ufb33":3,"1":4,"\\ud83d\\ude00":5,"\\u0080":6,"\\u00f6":7}'
    )
    order = [json.loads(canonical_string(k)) for k in sorted(keys, key=_utf16_key)]
    assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001F600", "\ufb33"], order

    # ECMAScript number formatting (RFC 8785 appendix B samples).
    for value, text in [
        (0.0, "0"),
        (-0.0, "0"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (9007199254740992.0, "9007199254740992"),
        (295147905179352830000.0, "295147905179352830000"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1e-6, "0.000001"),
        (1e-7, "1e-7"),
        (0.1, "0.1"),
        (-1.5, "-1.5"),
        (123.456, "123.456"),
        (2**60, "1152921504606847000"),
        (2**53 + 1, "9007199254740992"),
        (12, "12"),
    ]:
        assert canonical_number(value) == text, (value, canonical_number(value), text)

    # Only the seven short escapes and \u00XX for other control characters.
    assert canonical_string("\x00\x07\x1f\x7f\u2028é🦞/") == '"\\u0000\\u0007\\u001f\x7f\u2028é🦞/"'
    print("lobstah_ref.py selftest ok")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--selftest":
        selftest()
    else:
        serve()
