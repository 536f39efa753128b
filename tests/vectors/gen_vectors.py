#!/usr/bin/env python3
"""Independent reference model of the /img request rules -> cache-key test vectors.

This file is written from the rules (contract.md + the vector brief), NOT from the
C++ sources, so that the native and the wasm builds of the core are checked against
a second implementation. Python 3 standard library only.

    python3 tests/vectors/gen_vectors.py           # rewrite tests/vectors/cache_keys.tsv
    python3 tests/vectors/gen_vectors.py --check   # exit 1 unless the committed file is current
    python3 tests/vectors/gen_vectors.py --stdout  # print instead of writing

The model, step by step (evaluate() below):
  1. target longer than 8192 bytes                         -> URL_TOO_LONG (414)
  2. path /img/{ws}/{id}/{filename}, strict percent-decoding -> INVALID_PATH (400)
  3. query parameters, in the order given                  -> INVALID_PARAM (400)
  4. signature, only when a secret is set                  -> INVALID_SIGNATURE (403)
  5. normalisation, Accept negotiation, canonical key, SHA-256.

Readings chosen where the rules leave room (each is pinned by at least one vector
unless said otherwise):
  * Path segments are split on raw '/' first, then decoded, so %2F never splits.
    Every segment is decoded, ws and id included ("%61" in an id is an 'a').
  * UUIDs: any 32 hex digits (no version/variant check), or the 8-4-4-4-12 dashed form;
    any other dash placement is not a UUID (for ws it may still be a slug, kept as is).
  * A filename is bytes: no UTF-8 validity check (%FF is a valid 1-byte name).
  * Query names are percent-decoded ('+' = space) BEFORE matching the known names, so
    "%77=800" is w=800 and "w=1&%77=2" is a duplicate. Matching is case-sensitive
    ("W=800" is unknown, ignored).
  * Leading zeros are accepted in w, h, q and in dpr's integer part ("q=075", "dpr=01.5").
  * fit/dpr are validated even when they have no effect (no w/h): fit=crop alone is an error.
  * sig is a known parameter: empty, duplicated or badly escaped -> INVALID_PARAM even
    when no secret is set. Its value is otherwise not checked when no secret is set.
  * Signature: the piece excluded from the payload is the one whose RAW name is "sig";
    "%73ig=..." is therefore signed like any other piece and can never verify (403).
    The sig compared is the parameter's value; vectors never have a sig whose raw and
    decoded forms differ, so either reading reproduces them. It is compared as base64url
    TEXT: a non-canonical last character that decodes to the same MAC bytes is wrong.
  * Accept: q-value grammar of RFC 9110 (0[.ddd] / 1[.000]); "q=0." / "q=1." are valid
    there but no vector relies on it. Whitespace is trimmed around the media range, each
    parameter, and around a parameter's '=' ("q = 0.5" is 0.5). An entry whose q is
    invalid (1.5, abc, 0.1234, empty) is ignored. A repeated q param within one entry is
    not pinned by any vector (the model takes the first).
  * Error rows carry vary "-" (error responses are never cached and have no Vary).
  * w and h both given: h/w (after dpr) snaps to the nearest of ASPECT_RATIOS on a log
    scale, i.e. between neighbours a < b it goes to b when (h/w)^2 >= a*b (a tie: the
    taller); below 4:1 / above 1:4 it is the end; then h = snapped w x ratio, rounded half
    up, clamped to 1..8192. At most 19 heights per width (the "aspect-*" cases).
"""

import base64
import hashlib
import hmac
import math
import os
import sys
from fractions import Fraction

MAX_TARGET = 8192
MAX_FILENAME = 255
MAX_DIM = 8192
DEFAULT_WIDTHS = [32, 48, 64, 96, 128, 256, 320, 384, 480, 640, 750, 800, 828, 1024, 1080,
                  1200, 1600, 1920, 2048, 3840]
DEFAULT_QUALITY = [60, 75, 85, 95]
KNOWN = ("w", "h", "fit", "fmt", "q", "dpr", "sig")
FITS = ("cover", "contain", "fill", "inside", "outside")
FMT_TOKENS = {"webp": "webp", "avif": "avif", "jpeg": "jpeg", "jpg": "jpeg", "png": "png",
              "original": "original", "auto": None}
# w:h pairs; h/w snaps to the nearest of these (both w and h given).
ASPECT_RATIOS = ["4:1", "3:1", "21:9", "2:1", "16:9", "16:10", "3:2", "4:3", "5:4", "1:1",
                 "4:5", "3:4", "2:3", "10:16", "9:16", "1:2", "9:21", "1:3", "1:4"]
ASPECT_LADDER = sorted(Fraction(int(r.split(":")[1]), int(r.split(":")[0])) for r in ASPECT_RATIOS)
STATUS = {"URL_TOO_LONG": 414, "INVALID_PATH": 400, "INVALID_PARAM": 400,
          "INVALID_SIGNATURE": 403}
HEADER = "# name\ttarget\taccept\tsettings\tstatus\tresult\tsha256\tvary"
HEX = b"0123456789abcdefABCDEF"
UNRESERVED = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


class Reject(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


# ---------------------------------------------------------------- percent coding

def pct_decode(raw, plus_as_space):
    """bytes -> bytes, or None on a '%' not followed by two hex digits."""
    out = bytearray()
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == 0x25:  # '%'
            if i + 2 >= len(raw) or raw[i + 1] not in HEX or raw[i + 2] not in HEX:
                return None
            out.append(int(raw[i + 1:i + 3], 16))
            i += 3
        elif c == 0x2B and plus_as_space:  # '+'
            out.append(0x20)
            i += 1
        else:
            out.append(c)
            i += 1
    return bytes(out)


def pct_encode(data):
    return "".join(chr(b) if b in UNRESERVED else "%%%02X" % b for b in data)


# ---------------------------------------------------------------- path

def canonical_uuid(text):
    """bytes -> 32 lower-case hex str, or None."""
    if len(text) == 36:
        if any(text[i] != 0x2D for i in (8, 13, 18, 23)):
            return None
        text = text[:8] + text[9:13] + text[14:18] + text[19:23] + text[24:]
    if len(text) != 32 or any(c not in HEX for c in text):
        return None
    return text.decode("ascii").lower()


SLUG = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def canonical_workspace(text):
    u = canonical_uuid(text)
    if u is not None:
        return u
    if 1 <= len(text) <= 64 and all(c in SLUG for c in text):
        return text.decode("ascii")
    return None


def parse_image_path(path):
    if not path.startswith(b"/img/"):
        raise AssertionError("vectors only cover /img/ paths: %r" % path)
    segments = path[len(b"/img/"):].split(b"/")
    if len(segments) != 3 or any(len(s) == 0 for s in segments):
        raise Reject("INVALID_PATH")
    decoded = [pct_decode(s, plus_as_space=False) for s in segments]
    if any(d is None for d in decoded):
        raise Reject("INVALID_PATH")
    ws_raw, id_raw, filename = decoded
    ws = canonical_workspace(ws_raw)
    ident = canonical_uuid(id_raw)
    if ws is None or ident is None:
        raise Reject("INVALID_PATH")
    if not 1 <= len(filename) <= MAX_FILENAME:
        raise Reject("INVALID_PATH")
    if b"/" in filename or b"\\" in filename or b"\x00" in filename or b".." in filename:
        raise Reject("INVALID_PATH")
    return ws, ident, filename


# ---------------------------------------------------------------- query

def split_query(query):
    """Raw (name, value, had_equals) triples, empty pieces skipped."""
    out = []
    for piece in query.split(b"&"):
        if not piece:
            continue
        name, eq, value = piece.partition(b"=")
        out.append((name, value, bool(eq)))
    return out


def parse_uint(text, lo, hi):
    """Digits only, leading zeros allowed, no overflow: None when invalid/out of range."""
    if not text or any(c not in b"0123456789" for c in text):
        return None
    significant = text.lstrip(b"0")
    if len(significant) > 5:
        return None
    v = int(significant) if significant else 0
    return v if lo <= v <= hi else None


def parse_dpr(text):
    """-> tenths 10..40 or None. Digits, optionally '.' and exactly one digit."""
    whole, dot, frac = text.partition(b".")
    if dot and len(frac) != 1:
        return None
    if dot and frac not in [bytes([c]) for c in b"0123456789"]:
        return None
    w = parse_uint(whole, 0, 99999)
    if w is None:
        return None
    tenths = w * 10 + (int(frac) if dot else 0)
    return tenths if 10 <= tenths <= 40 else None


def parse_params(query):
    params = {}
    for name_raw, value_raw, _ in split_query(query):
        name = pct_decode(name_raw, plus_as_space=True)
        if name is None:
            continue  # undecodable name: cannot be a known parameter
        try:
            name = name.decode("ascii")
        except UnicodeDecodeError:
            continue
        if name not in KNOWN:
            continue
        if name in params:
            raise Reject("INVALID_PARAM")
        value = pct_decode(value_raw, plus_as_space=True)
        if value is None or not value:
            raise Reject("INVALID_PARAM")
        if name in ("w", "h"):
            v = parse_uint(value, 1, MAX_DIM)
        elif name == "q":
            v = parse_uint(value, 1, 100)
        elif name == "dpr":
            v = parse_dpr(value)
        elif name == "fit":
            v = value.decode("latin-1") if value.decode("latin-1") in FITS else None
        elif name == "fmt":
            s = value.decode("latin-1")
            v = s if s in FMT_TOKENS else None
        else:  # sig
            v = value
        if v is None:
            raise Reject("INVALID_PARAM")
        params[name] = v
    return params


# ---------------------------------------------------------------- signature

def signing_payload(path, query):
    pieces = []
    for name, value, _ in split_query(query):
        if name == b"sig":
            continue
        pieces.append((name, value))
    pieces.sort()
    return path + b"?" + b"&".join(n + b"=" + v for n, v in pieces)


def compute_sig(secret, path, query):
    mac = hmac.new(secret.encode("utf-8"), signing_payload(path, query), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


# ---------------------------------------------------------------- Accept

OWS = " \t"


def parse_qvalue(text):
    """RFC 9110 qvalue -> thousandths, or None."""
    if not text or text[0] not in "01":
        return None
    whole, dot, frac = text.partition(".")
    if len(whole) != 1 or len(frac) > 3:
        return None
    if any(c not in "0123456789" for c in frac):
        return None
    v = int(whole) * 1000 + (int(frac.ljust(3, "0")) if frac else 0)
    return v if v <= 1000 else None


def accept_q(accept):
    best = {"image/avif": 0, "image/webp": 0}
    for entry in accept.split(","):
        parts = entry.split(";")
        media = parts[0].strip(OWS).lower()
        if media not in best:
            continue
        q = 1000
        ok = True
        seen_q = False
        for p in parts[1:]:
            pname, eq, pvalue = p.partition("=")
            if pname.strip(OWS).lower() != "q" or seen_q:
                continue
            seen_q = True
            q = parse_qvalue(pvalue.strip(OWS)) if eq else None
            if q is None:
                ok = False
        if ok:
            best[media] = max(best[media], q)
    return best["image/avif"], best["image/webp"]


def negotiate(accept):
    qa, qw = accept_q(accept)
    if qa > 0 and qa >= qw:
        return "auto-avif"
    if qw > 0:
        return "auto-webp"
    return "original"


# ---------------------------------------------------------------- normalisation

def snap_up(value, widths):
    for w in widths:
        if w >= value:
            return w
    return widths[-1]


def nearest_step(q, steps):
    best = steps[0]
    for s in steps:
        if abs(s - q) <= abs(best - q):  # ascending: on a tie the later (higher) step wins
            best = s
    return best


def snap_aspect(r):
    """h/w -> the nearest entry of ASPECT_LADDER on a log scale (a tie goes to
    the taller ratio); beyond either end, that end."""
    ladder = ASPECT_LADDER
    if r <= ladder[0]:
        return ladder[0]
    if r >= ladder[-1]:
        return ladder[-1]
    for a, b in zip(ladder, ladder[1:]):
        if a <= r <= b:
            # |log r - log a| vs |log b - log r|  <=>  r*r vs a*b, exactly
            return b if r * r >= a * b else a
    raise AssertionError("unreachable")


def normalise(params, settings, accept):
    d = params.get("dpr", 10)
    key = {}
    w = params.get("w")
    h = params.get("h")
    wp = (w * d + 9) // 10 if w is not None else None
    hp = (h * d + 9) // 10 if h is not None else None
    if wp is not None:
        W = snap_up(wp, settings["widths"])
        key["w"] = W
        if hp is not None:
            ratio = snap_aspect(Fraction(hp, wp))
            H = math.floor(W * ratio + Fraction(1, 2))  # round half up
            key["h"] = min(max(H, 1), MAX_DIM)
    elif hp is not None:
        key["h"] = snap_up(hp, settings["widths"])
    fit = params.get("fit", "inside")
    if (w is not None or h is not None) and fit != "inside":
        key["fit"] = fit
    requested = params.get("fmt", "auto")
    token = FMT_TOKENS[requested]
    vary = token is None
    key["fmt"] = negotiate(accept) if vary else token
    if "q" in params:
        key["q"] = nearest_step(params["q"], settings["quality"])
    return key, vary


def parse_settings(text):
    s = {"widths": DEFAULT_WIDTHS, "quality": DEFAULT_QUALITY, "secret": ""}
    if text == "-":
        return s
    for item in text.split(";"):
        k, _, v = item.partition("=")
        if k == "widths":
            s["widths"] = sorted(set(int(x) for x in v.split(",")))
        elif k == "quality":
            s["quality"] = sorted(set(int(x) for x in v.split(",")))
        elif k == "secret":
            s["secret"] = v
        else:
            raise AssertionError("unknown setting " + k)
    return s


# ---------------------------------------------------------------- the whole request

def evaluate(target, accept, settings_text):
    """-> (status, result, sha256, vary) as written in the vector file."""
    settings = parse_settings(settings_text)
    raw = target.encode("utf-8")
    try:
        if len(raw) > MAX_TARGET:
            raise Reject("URL_TOO_LONG")
        path, _, query = raw.partition(b"?")
        ws, ident, filename = parse_image_path(path)
        params = parse_params(query)
        if settings["secret"]:
            given = params.get("sig")
            want = compute_sig(settings["secret"], path, query).encode("ascii")
            if given is None or not hmac.compare_digest(given, want):
                raise Reject("INVALID_SIGNATURE")
        key_params, vary = normalise(params, settings, accept)
    except Reject as e:
        return str(STATUS[e.code]), e.code, "-", "-"
    key = "v1/%s/%s/%s?%s" % (ws, ident, pct_encode(filename), "&".join(
        "%s=%s" % (k, key_params[k]) for k in ("fit", "fmt", "h", "q", "w") if k in key_params))
    return "200", key, hashlib.sha256(key.encode("ascii")).hexdigest(), "vary" if vary else "-"


# ---------------------------------------------------------------- the cases

WS = "e4a1c3b2-7f6d-4e5c-9b8a-1d2c3b4a5f60"       # a Notion space id, dashed
WSX = WS.replace("-", "")
ID = "9c8b7a6f-5e4d-4c3b-a2f1-0e9d8c7b6a54"       # a block id, dashed
IDX = ID.replace("-", "")
BASE = "/img/%s/%s/photo.jpg" % (WS, ID)
CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
SAFARI = ("image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,"
          "image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5")
SECRET = "s3cr3t-key"
SIGNED = "secret=" + SECRET


def img(ws=WS, ident=ID, filename="photo.jpg"):
    return "/img/%s/%s/%s" % (ws, ident, filename)


def sign(path, query, secret=SECRET):
    return compute_sig(secret, path.encode("ascii"), query.encode("ascii"))


def signed(path, query, secret=SECRET, pos=None):
    """path?query with a valid sig inserted at piece index pos (default: last)."""
    sig = "sig=" + sign(path, query, secret)
    pieces = query.split("&") if query else []
    pieces.insert(len(pieces) if pos is None else pos, sig)
    return path + "?" + "&".join(pieces)


def cases():
    out = []  # (name, target, accept, settings, note or None)

    def add(name, target, accept="", settings="-", note=None):
        out.append((name, target, accept, settings, note))

    def group(title):
        out.append(("#", title, None, None, None))

    # ---------------------------------------------------------- basics
    group("basics: defaults, no parameters, fmt always in the key")
    add("basic-noquery", BASE)
    add("basic-empty-query", BASE + "?")
    add("basic-chrome", BASE, CHROME)
    add("basic-w800", BASE + "?w=800")
    add("basic-w800-chrome", BASE + "?w=800", CHROME)
    add("basic-all", BASE + "?w=640&h=480&fit=cover&fmt=webp&q=80&dpr=1", CHROME)
    add("basic-all-reordered", BASE + "?dpr=1&q=80&fmt=webp&fit=cover&h=480&w=640", CHROME)
    add("basic-fmt-auto-explicit", BASE + "?fmt=auto&w=800", CHROME)

    # ---------------------------------------------------------- target length
    group("target length: more than 8192 bytes -> URL_TOO_LONG (checked first)")
    pad_base = BASE + "?w=800&pad="
    add("len-8192-ok", pad_base + "x" * (8192 - len(pad_base)),
        note="exactly 8192 bytes: allowed; the unknown pad parameter is ignored")
    add("len-8193", pad_base + "x" * (8193 - len(pad_base)))
    add("len-10000", pad_base + "x" * (10000 - len(pad_base)))
    bad_base = img(filename="a%zz.jpg") + "?pad="
    add("len-8193-badpath", bad_base + "x" * (8193 - len(bad_base)),
        note="URL_TOO_LONG wins over INVALID_PATH")
    bp = BASE + "?w=0&pad="
    add("len-8193-badparam", bp + "x" * (8193 - len(bp)))
    lp = "/img/%s/%s/%s" % (WS, ID, "b" * 255)
    add("len-8192-longname", lp + "?pad=" + "y" * (8192 - len(lp) - 5))

    # ---------------------------------------------------------- path shape
    group("path shape: exactly /img/{ws}/{id}/{filename}")
    add("path-trailing-slash", BASE + "/")
    add("path-extra-segment", img(filename="a/photo.jpg"))
    add("path-two-segments", "/img/%s/%s" % (WS, ID))
    add("path-two-segments-slash", "/img/%s/%s/" % (WS, ID))
    add("path-one-segment", "/img/%s" % WS)
    add("path-empty-ws", "/img//%s/photo.jpg" % ID)
    add("path-empty-id", "/img/%s//photo.jpg" % WS)
    add("path-double-slash-after-img", "/img//%s/%s/photo.jpg" % (WS, ID))
    add("path-double-slash-in-name", "/img/%s/%s//photo.jpg" % (WS, ID))
    add("path-dot-segment", "/img/%s/%s/./photo.jpg" % (WS, ID))
    add("path-dotdot-segment", "/img/%s/%s/../photo.jpg" % (WS, ID))
    add("path-query-after-slash", BASE + "/?w=800")

    # ---------------------------------------------------------- workspace
    group("workspace: UUID (canonical 32 lower-case hex) or slug [A-Za-z0-9_-]{1,64} kept as given")
    add("ws-uuid-dashed", img(ws=WS))
    add("ws-uuid-plain", img(ws=WSX))
    add("ws-uuid-upper-dashed", img(ws=WS.upper()))
    add("ws-uuid-upper-plain", img(ws=WSX.upper()))
    add("ws-uuid-mixed", img(ws="E4a1C3b2-7F6d-4E5c-9B8a-1D2c3B4a5F60"))
    add("ws-slug-simple", img(ws="acme"))
    add("ws-slug-case-kept", img(ws="Acme_Docs-2024"))
    add("ws-slug-1", img(ws="a"))
    add("ws-slug-64", img(ws="W" * 64))
    add("ws-slug-65", img(ws="W" * 65))
    add("ws-slug-dash-underscore", img(ws="-_-"))
    add("ws-slug-dashes-misplaced", img(ws="e4a1c3b27-f6d-4e5c-9b8a-1d2c3b4a5f60"),
        note="36 chars but dashes not at 8-4-4-4-12: not a UUID, still a valid slug, kept as given")
    add("ws-slug-33hex", img(ws=WSX + "a"), note="33 hex digits: a slug, case kept")
    add("ws-slug-upper-31hex", img(ws=WSX[:31].upper()), note="31 hex digits: a slug, not lower-cased")
    add("ws-slug-decoded", img(ws="ac%6De"), note="segments are percent-decoded: ac%6De is acme")
    add("ws-uuid-encoded-dash", img(ws=WS.replace("-", "%2D")),
        note="%2D decodes to '-' before the UUID test")
    add("ws-bad-dot", img(ws="ac.me"))
    add("ws-bad-space", img(ws="ac%20me"))
    add("ws-bad-plus", img(ws="ac+me"), note="'+' in the path is a literal '+', not a slug char")
    add("ws-bad-tilde", img(ws="acme~"))
    add("ws-bad-unicode", img(ws="caf%C3%A9"))
    add("ws-bad-escape", img(ws="ac%zzme"))
    add("ws-bad-encoded-slash", img(ws="ac%2Fme"))
    add("ws-bad-braces", img(ws="%7B" + WS + "%7D"))
    add("ws-bad-colon", img(ws="urn:uuid:" + WS))
    add("ws-dotdot", img(ws=".."))
    add("ws-dotdot-encoded", img(ws="%2e%2e"))

    # ---------------------------------------------------------- id
    group("id: must be a UUID (32 hex or dashed 8-4-4-4-12, any case) -> 32 lower-case hex")
    add("id-dashed", img(ident=ID))
    add("id-plain", img(ident=IDX))
    add("id-upper-dashed", img(ident=ID.upper()))
    add("id-upper-plain", img(ident=IDX.upper()))
    add("id-mixed", img(ident="9C8b7A6f-5E4d-4C3b-A2f1-0E9d8C7b6A54"))
    add("id-encoded-hex", img(ident="%39c8b7a6f5e4d4c3ba2f10e9d8c7b6a54"),
        note="%39 decodes to '9' before the UUID test")
    add("id-all-zero", img(ident="0" * 32), note="no version/variant check")
    add("id-31hex", img(ident=IDX[:31]))
    add("id-33hex", img(ident=IDX + "0"))
    add("id-non-hex", img(ident=IDX[:31] + "g"))
    add("id-dashes-misplaced", img(ident="9c8b7a6f5-e4d-4c3b-a2f1-0e9d8c7b6a54"))
    add("id-partial-dashes", img(ident="9c8b7a6f-5e4d4c3ba2f10e9d8c7b6a54"))
    add("id-extra-dash", img(ident=ID + "-"))
    add("id-slug", img(ident="my-image"))
    add("id-braces", img(ident="%7B" + ID + "%7D"))
    add("id-bad-escape", img(ident="%g9c8b7a6f5e4d4c3ba2f10e9d8c7b6a5"))
    add("id-spaces", img(ident=ID.replace("-", "%20")))
    add("id-dotdot", img(ident=".."))
    add("id-encoded-slash", img(ident=ID[:8] + "%2F" + ID[9:]))

    # ---------------------------------------------------------- filename
    group("filename: decoded 1..255 bytes, no '/', '\\', NUL, '..'; key percent-encodes it")
    add("fn-simple", img(filename="photo.jpg"))
    add("fn-no-ext", img(filename="image"))
    add("fn-unreserved", img(filename="A-z_0.9~x.png"))
    add("fn-reserved-chars", img(filename="a!b$c'(1)*,;=@:.jpg"),
        note="sub-delims and ':' '@' are legal raw in a path; all become %XX in the key")
    add("fn-space", img(filename="my%20photo.jpg"))
    add("fn-plus-literal", img(filename="a+b.jpg"), note="'+' in the path is a literal '+' (key: %2B)")
    add("fn-plus-encoded", img(filename="a%2Bb.jpg"), note="same key as fn-plus-literal")
    add("fn-lowercase-escape", img(filename="caf%c3%a9.jpg"), note="key uses upper-case hex")
    add("fn-unicode-utf8", img(filename="caf%C3%A9.jpg"))
    add("fn-unicode-cjk", img(filename="%E5%86%99%E7%9C%9F.png"))
    add("fn-unicode-emoji", img(filename="%F0%9F%93%B7.webp"))
    add("fn-invalid-utf8", img(filename="%FF%FE.jpg"), note="bytes, not text: no UTF-8 check")
    add("fn-question-encoded", img(filename="what%3F.jpg"))
    add("fn-hash-encoded", img(filename="no%231.jpg"))
    add("fn-percent-encoded", img(filename="100%25.jpg"))
    add("fn-single-dot", img(filename="."), note="'.' is not '..': allowed")
    add("fn-dotfile", img(filename=".hidden"))
    add("fn-dots-separated", img(filename="a.b.c.jpg"))
    add("fn-255", img(filename="a" * 251 + ".jpg"))
    add("fn-256", img(filename="a" * 252 + ".jpg"))
    add("fn-255-escaped", img(filename="%E2%82%AC" * 85),
        note="765 raw bytes, 255 decoded bytes: the limit is on the decoded name")
    add("fn-258-escaped", img(filename="%E2%82%AC" * 86))
    add("fn-1", img(filename="x"))
    add("fn-dotdot", img(filename=".."))
    add("fn-dotdot-inside", img(filename="a..b.jpg"))
    add("fn-triple-dot", img(filename="..."))
    add("fn-dotdot-encoded", img(filename="%2e%2e"))
    add("fn-dotdot-encoded-upper", img(filename="%2E%2E"))
    add("fn-dotdot-half-encoded", img(filename=".%2e"))
    add("fn-dotdot-slash-encoded", img(filename="..%2Fetc%2Fpasswd"))
    add("fn-slash-encoded", img(filename="a%2Fb.jpg"))
    add("fn-slash-encoded-lower", img(filename="a%2fb.jpg"))
    add("fn-backslash-raw", img(filename="a\\b.jpg"))
    add("fn-backslash-encoded", img(filename="a%5Cb.jpg"))
    add("fn-backslash-dotdot", img(filename="..%5C..%5Cwin.ini"))
    add("fn-nul", img(filename="a%00.jpg"))
    add("fn-nul-only", img(filename="%00"))
    add("fn-bad-escape-zz", img(filename="a%zz.jpg"))
    add("fn-bad-escape-short", img(filename="a%4.jpg"))
    add("fn-bad-escape-trailing", img(filename="photo.jpg%"))
    add("fn-bad-escape-trailing-1", img(filename="photo.jpg%4"))
    add("fn-bad-escape-double-pct", img(filename="a%%41.jpg"))
    add("fn-bad-escape-half-hex", img(filename="a%4g.jpg"))
    add("fn-bad-escape-with-query", img(filename="a%zz.jpg") + "?w=0",
        note="path errors come before parameter errors")

    # ---------------------------------------------------------- w / h
    group("w, h: digits only, leading zeros allowed, 1..8192")
    for name, value, in [
            ("w-1", "1"), ("w-32", "32"), ("w-33", "33"), ("w-800", "800"), ("w-801", "801"),
            ("w-3840", "3840"), ("w-3841", "3841"), ("w-8192", "8192"),
            ("w-leading-zero", "0800"), ("w-many-zeros", "000000000000000000000000800"),
            ("w-zeros-to-1", "0000000001"), ("w-escaped-digits", "%38%30%30")]:
        add(name, BASE + "?w=" + value)
    for name, value in [
            ("w-0", "0"), ("w-000", "000"), ("w-8193", "8193"), ("w-99999", "99999"),
            ("w-100000", "100000"), ("w-huge", "18446744073709551617"),
            ("w-huge-zeros", "0000099999999999999999999"), ("w-exp", "1e3"), ("w-exp-upper", "1E3"),
            ("w-plus-sign", "+800"), ("w-plus-encoded", "%2B800"), ("w-minus", "-1"),
            ("w-minus-800", "-800"), ("w-space-inside", "08%2000"), ("w-plus-inside", "08+00"),
            ("w-space-leading", "%20800"), ("w-space-trailing", "800%20"), ("w-decimal", "800.0"),
            ("w-decimal-short", "800."), ("w-hex", "0x320"), ("w-alpha", "abc"), ("w-unit", "800px"),
            ("w-fullwidth", "%EF%BC%98%EF%BC%90%EF%BC%90"), ("w-bad-escape", "%zz"),
            ("w-bad-escape-short", "80%4"), ("w-bad-escape-trailing", "800%"),
            ("w-tab", "800%09"), ("w-nul", "800%00"), ("w-comma", "8,00")]:
        add(name, BASE + "?w=" + value)
    add("w-empty", BASE + "?w=")
    add("w-no-equals", BASE + "?w")
    add("w-dup-same", BASE + "?w=800&w=800")
    add("w-dup-diff", BASE + "?w=800&w=640")
    add("w-dup-second-bad", BASE + "?w=800&w=abc")
    add("w-value-with-equals", BASE + "?w=800=1", note="split at the first '=': value is '800=1'")
    add("w-value-with-question", BASE + "?w=800?x=1", note="a second '?' is part of the query")
    for name, value in [("h-1", "1"), ("h-300", "300"), ("h-8192", "8192"),
                        ("h-leading-zero", "00300")]:
        add(name, BASE + "?h=" + value)
    for name, value in [("h-0", "0"), ("h-8193", "8193"), ("h-neg", "-5"), ("h-exp", "3e2"),
                        ("h-decimal", "300.5"), ("h-space", "%20300")]:
        add(name, BASE + "?h=" + value)
    add("h-empty", BASE + "?h=")
    add("h-dup", BASE + "?h=300&w=800&h=300")

    # ---------------------------------------------------------- q
    group("q: digits only, 1..100, snapped to the nearest QUALITY_STEPS entry (tie -> higher)")
    for v in ["1", "59", "60", "67", "68", "75", "80", "81", "90", "95", "100", "075"]:
        add("q-" + v, BASE + "?q=" + v)
    for name, value in [("q-0", "0"), ("q-101", "101"), ("q-100.5", "100.5"), ("q-80.0", "80.0"),
                        ("q-neg", "-80"), ("q-plus", "+80"), ("q-word", "high"), ("q-pct", "80%25"),
                        ("q-huge", "99999999999999999999")]:
        add(name, BASE + "?q=" + value)
    add("q-empty", BASE + "?q=")
    add("q-dup", BASE + "?q=80&q=80")

    # ---------------------------------------------------------- dpr
    group("dpr: digits with at most one decimal digit, 1.0..4.0; applied to w and h (ceil)")
    for name, value in [("dpr-1", "1"), ("dpr-1.0", "1.0"), ("dpr-1.5", "1.5"), ("dpr-2", "2"),
                        ("dpr-2.0", "2.0"), ("dpr-2.5", "2.5"), ("dpr-3", "3"), ("dpr-4", "4"),
                        ("dpr-4.0", "4.0"), ("dpr-leading-zero", "01.5")]:
        add(name, BASE + "?w=400&dpr=" + value)
    for name, value in [("dpr-0", "0"), ("dpr-0.5", "0.5"), ("dpr-0.9", "0.9"), ("dpr-4.1", "4.1"),
                        ("dpr-5", "5"), ("dpr-1.25", "1.25"), ("dpr-.5", ".5"), ("dpr-2.", "2."),
                        ("dpr-comma", "1,5"), ("dpr-plus", "%2B2"), ("dpr-neg", "-1"),
                        ("dpr-exp", "2e0"), ("dpr-two-dots", "1.5.0"), ("dpr-space", "%202"),
                        ("dpr-x", "2x"), ("dpr-huge", "99999999999"), ("dpr-frac-alpha", "1.x")]:
        add(name, BASE + "?w=400&dpr=" + value)
    add("dpr-empty", BASE + "?w=400&dpr=")
    add("dpr-alone", BASE + "?dpr=2", note="valid dpr without w/h: no effect on the key")
    add("dpr-alone-bad", BASE + "?dpr=9", note="validated even when it has no effect")
    add("dpr-ceil-1", BASE + "?w=1&dpr=1.5", note="ceil(1.5)=2 -> 32")
    add("dpr-ceil-333", BASE + "?w=333&dpr=1.5", note="ceil(499.5)=500 -> 640")
    add("dpr-cap", BASE + "?w=8192&dpr=4", note="32768 -> largest allowed width")
    add("dpr-h-only", BASE + "?h=100&dpr=2.5", note="h'=250, snapped up to 256")
    add("dpr-w-h", BASE + "?w=400&h=300&dpr=2")
    add("dpr-w-h-ratio", BASE + "?w=333&h=250&dpr=1.5", note="w'=500 h'=375 W=640 H=480")
    add("dpr-w-h-cap", BASE + "?w=8192&h=8192&dpr=4")

    # ---------------------------------------------------------- fit
    group("fit: cover|contain|fill|inside|outside; in the key only with w or h and not inside")
    for f in FITS:
        add("fit-%s-w" % f, BASE + "?w=800&fit=" + f)
    add("fit-cover-h", BASE + "?h=300&fit=cover")
    add("fit-cover-wh", BASE + "?w=800&h=600&fit=cover")
    add("fit-cover-alone", BASE + "?fit=cover", note="fit without w/h has no meaning: not in key")
    add("fit-inside-alone", BASE + "?fit=inside")
    for name, value in [("fit-crop", "crop"), ("fit-upper", "COVER"), ("fit-title", "Cover"),
                        ("fit-space", "cover%20"), ("fit-plus", "co+ver"), ("fit-scale-down", "scale-down")]:
        add(name, BASE + "?w=800&fit=" + value)
    add("fit-crop-alone", BASE + "?fit=crop", note="validated even when it has no effect")
    add("fit-empty", BASE + "?w=800&fit=")
    add("fit-escaped", BASE + "?w=800&fit=c%6Fver", note="value decoded before matching")
    add("fit-dup", BASE + "?w=800&fit=cover&fit=cover")

    # ---------------------------------------------------------- fmt
    group("fmt: explicit tokens pass through (jpg == jpeg), no Vary; auto negotiates")
    for f in ["webp", "avif", "jpeg", "jpg", "png", "original"]:
        add("fmt-%s" % f, BASE + "?w=800&fmt=" + f, CHROME)
    add("fmt-jpeg-no-accept", BASE + "?fmt=jpeg")
    add("fmt-avif-accept-none", BASE + "?fmt=avif", "image/jpeg",
        note="explicit fmt ignores Accept")
    add("fmt-auto-chrome", BASE + "?fmt=auto", CHROME)
    add("fmt-auto-no-accept", BASE + "?fmt=auto")
    for name, value in [("fmt-bmp", "BMP"), ("fmt-bmp-lower", "bmp"), ("fmt-jpeg-upper", "JPEG"),
                        ("fmt-webp-title", "Webp"), ("fmt-gif", "gif"), ("fmt-svg", "svg"),
                        ("fmt-jxl", "jxl"), ("fmt-heic", "heic"), ("fmt-mime", "image%2Fwebp"),
                        ("fmt-space", "webp+")]:
        add(name, BASE + "?fmt=" + value)
    add("fmt-empty", BASE + "?fmt=")
    add("fmt-dup", BASE + "?fmt=webp&fmt=avif")
    add("fmt-escaped", BASE + "?fmt=web%70")

    # ---------------------------------------------------------- Accept
    group("Accept (fmt=auto): explicit image/avif and image/webp entries only; highest q per type")
    accept_cases = [
        ("acc-empty", ""),
        ("acc-chrome", CHROME),
        ("acc-firefox", "image/avif,image/webp,*/*"),
        ("acc-firefox-old", "image/webp,*/*"),
        ("acc-safari", SAFARI),
        ("acc-edge-old", "image/webp,image/apng,image/*,*/*;q=0.8"),
        ("acc-curl", "*/*"),
        ("acc-image-wildcard", "image/*"),
        ("acc-wildcards-high-q", "image/*;q=1, */*;q=1"),
        ("acc-jpeg-only", "image/jpeg"),
        ("acc-avif-only", "image/avif"),
        ("acc-webp-only", "image/webp"),
        ("acc-upper", "IMAGE/AVIF"),
        ("acc-mixed-case", "Image/WebP"),
        ("acc-spaces", "  image/webp ,   image/avif  "),
        ("acc-spaces-params", "image/avif ; q = 0.5 , image/webp ; q=0.4"),
        ("acc-no-spaces", "image/webp;q=0.9,image/avif;q=0.8"),
        ("acc-leading-comma", ",,image/webp,,"),
        ("acc-q-upper-name", "image/avif;Q=0, image/webp"),
        ("acc-tie", "image/webp;q=0.8, image/avif;q=0.8"),
        ("acc-tie-1", "image/webp, image/avif"),
        ("acc-webp-higher", "image/avif;q=0.5, image/webp;q=0.6"),
        ("acc-avif-higher", "image/avif;q=0.6, image/webp;q=0.5"),
        ("acc-avif-thousandth", "image/avif;q=0.001"),
        ("acc-webp-beats-by-thousandth", "image/avif;q=0.5, image/webp;q=0.501"),
        ("acc-q1-000", "image/avif;q=1.000, image/webp;q=1"),
        ("acc-q-two-decimals", "image/avif;q=0.25, image/webp;q=0.3"),
        ("acc-avif-q0", "image/avif;q=0, image/webp"),
        ("acc-avif-q0-000", "image/avif;q=0.000, image/webp;q=0.1"),
        ("acc-both-q0", "image/avif;q=0, image/webp;q=0"),
        ("acc-both-q0-wildcard", "image/avif;q=0, image/webp;q=0, */*"),
        ("acc-avif-q0-only", "image/avif;q=0"),
        ("acc-avif-q0-image-wild", "image/avif;q=0, image/*"),
        ("acc-dup-avif-higher-later", "image/avif;q=0, image/avif;q=0.9, image/webp;q=0.5"),
        ("acc-dup-avif-higher-first", "image/avif, image/avif;q=0"),
        ("acc-dup-webp", "image/webp;q=0.2, image/avif;q=0.5, image/webp;q=0.9"),
        ("acc-q-invalid-high", "image/avif;q=1.5, image/webp;q=0.5"),
        ("acc-q-invalid-alpha", "image/avif;q=abc, image/webp;q=0.5"),
        ("acc-q-invalid-4dec", "image/avif;q=0.1234, image/webp;q=0.1"),
        ("acc-q-invalid-empty", "image/avif;q=, image/webp"),
        ("acc-q-invalid-neg", "image/avif;q=-1, image/webp;q=0.1"),
        ("acc-q-invalid-1-5", "image/avif;q=1.001, image/webp;q=0.1"),
        ("acc-q-invalid-dotfirst", "image/webp;q=.5"),
        ("acc-q-invalid-only", "image/avif;q=2"),
        ("acc-invalid-dup-valid", "image/avif;q=2, image/avif;q=0.3, image/webp;q=0.2"),
        ("acc-other-params", "image/avif;level=1;q=0.7, image/webp;q=0.8"),
        ("acc-other-params-no-q", "image/webp;charset=x"),
        ("acc-not-exact-type", "image/avif-sequence, image/webpx, image/x-avif"),
        ("acc-text-html", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("acc-garbage", "garbage, ;;, =, image/"),
        ("acc-garbage-then-webp", "garbage;;q=oops, image/webp"),
    ]
    for name, accept in accept_cases:
        add(name, BASE + "?w=800", accept)
    add("acc-absent-fmt", BASE, SAFARI)
    add("acc-leading-space", BASE, " image/webp", note="fields are never trimmed by the reader")

    # ---------------------------------------------------------- width / height normalisation
    group("normalisation: w snapped up (capped), h = w x the snapped aspect ratio, h alone snapped up")
    norm = [
        ("norm-w-31", "w=31"), ("norm-w-100", "w=100"), ("norm-w-799", "w=799"),
        ("norm-w-829", "w=829"), ("norm-w-2049", "w=2049"), ("norm-w-5000", "w=5000"),
        ("norm-h-1", "h=1"), ("norm-h-500", "h=500"), ("norm-h-5000", "h=5000"),
        ("norm-h-8192", "h=8192"),
        ("norm-wh-exact", "w=800&h=600"), ("norm-wh-ratio", "w=700&h=500"),
        ("norm-wh-square", "w=1000&h=1000"), ("norm-wh-half-up", "w=3&h=1"),
        ("norm-wh-half-up-2", "w=100&h=1"), ("norm-wh-tall", "w=32&h=8192"),
        ("norm-wh-clamp-high", "w=1&h=8192"), ("norm-wh-clamp-low", "w=8192&h=1"),
        ("norm-wh-capped-w", "w=5000&h=2500"), ("norm-wh-order", "h=500&w=700"),
        ("norm-wh-1-1", "w=1&h=1"), ("norm-wh-3-2", "w=3&h=2"),
        ("norm-wh-exact-half", "w=1536&h=12"), ("norm-wh-below-half", "w=1536&h=11"),
        ("norm-everything", "w=333&h=222&dpr=1.5&fit=contain&fmt=png&q=88"),
    ]
    for name, q in norm:
        add(name, BASE + "?" + q)

    group("aspect ratio: h/w snaps to 19 fixed ratios (log scale), so h cannot multiply the keys")
    for r in ASPECT_RATIOS:
        rw, rh = (int(x) for x in r.split(":"))
        add("aspect-exact-%s-%s" % (rw, rh), BASE + "?w=640&h=%d&fit=cover" % (640 * rh // rw))
    for hv in (1, 100, 150, 184, 185, 200, 213, 274, 275):
        add("aspect-w640-h%d" % hv, BASE + "?w=640&h=%d&fit=cover" % hv,
            note="w=640&h=1..200 is at most two keys (4:1 and 3:1)" if hv == 1 else None)
    add("aspect-below-boundary", BASE + "?w=1000&h=894", note="(0.894)^2 < 0.8 = (5:4)*(1:1): 5:4")
    add("aspect-above-boundary", BASE + "?w=1000&h=895", note="(0.895)^2 >= 0.8: 1:1")
    add("aspect-beyond-wide", BASE + "?w=8192&h=1", note="below 4:1 stays 4:1: 3840x960")
    add("aspect-beyond-tall", BASE + "?w=1&h=8192", note="above 1:4 stays 1:4: 32x128")
    add("aspect-tall-clamped", BASE + "?w=3000&h=8192", note="3840 x 4 = 15360, clamped to 8192")
    add("aspect-dpr", BASE + "?w=300&h=169&dpr=2", note="600x338 -> 16:9 at 640: h=360")
    add("aspect-odd-width", BASE + "?w=100&h=133", settings="widths=101",
        note="3:4 at 101: 134.67 -> 135")

    # ---------------------------------------------------------- settings
    group("custom ALLOWED_WIDTHS / QUALITY_STEPS (given like the environment variables)")
    sw = "widths=100,200,300"
    for name, q in [("set-w-150", "w=150"), ("set-w-1", "w=1"), ("set-w-300", "w=300"),
                    ("set-w-301", "w=301"), ("set-h-250", "h=250"), ("set-wh", "w=150&h=100"),
                    ("set-wh-capped", "w=600&h=400"), ("set-dpr", "w=120&dpr=2")]:
        add(name, BASE + "?" + q, settings=sw)
    add("set-unsorted", BASE + "?w=200", settings="widths=640,100,320",
        note="the list is sorted (and made unique) like ALLOWED_WIDTHS")
    add("set-dup-widths", BASE + "?w=200", settings="widths=320,100,320")
    add("set-single-width", BASE + "?w=1&h=1", settings="widths=500")
    add("set-single-width-big", BASE + "?w=800", settings="widths=500")
    add("set-8192", BASE + "?w=8192&h=1", settings="widths=8192")
    add("set-8192-tall", BASE + "?w=1&h=8192", settings="widths=8192")
    add("set-width-1", BASE + "?w=1&h=8192", settings="widths=1,2")
    add("set-half-up", BASE + "?w=2&h=1", settings="widths=3",
        note="H = 1*3/2 = 1.5 rounds half up to 2")
    add("set-half-up-2", BASE + "?w=2&h=3", settings="widths=3", note="4.5 -> 5")
    sq = "quality=50,80"
    for v in ["1", "64", "65", "66", "80", "100"]:
        add("set-q-%s" % v, BASE + "?q=" + v, settings=sq)
    add("set-q-1-100-50", BASE + "?q=50", settings="quality=1,100")
    add("set-q-1-100-51", BASE + "?q=51", settings="quality=1,100")
    add("set-q-single", BASE + "?q=10", settings="quality=90")
    add("set-q-unsorted", BASE + "?q=70", settings="quality=95,60")
    add("set-both", BASE + "?w=150&h=150&q=65", CHROME, "widths=100,200,300;quality=50,80")

    # ---------------------------------------------------------- unknown / odd query pieces
    group("unknown parameters are ignored (bad escapes included) and never in the key")
    add("unk-utm", BASE + "?w=800&utm_source=notion&utm_medium=web")
    add("unk-cachebuster", BASE + "?w=800&v=123456&t=999")
    add("unk-upper-W", BASE + "?W=800", note="names are case-sensitive: W is unknown")
    add("unk-upper-FMT", BASE + "?FMT=BMP")
    add("unk-width", BASE + "?width=800&quality=10")
    add("unk-bad-escape-value", BASE + "?w=800&x=%zz")
    add("unk-bad-escape-name", BASE + "?w=800&%zz=1")
    add("unk-bad-escape-name-w", BASE + "?w%zz=1&w=800", note="undecodable name: piece ignored")
    add("unk-no-equals", BASE + "?w=800&flag")
    add("unk-empty-name", BASE + "?=800&w=800")
    add("unk-empty-value", BASE + "?x=&w=800")
    add("unk-only-equals", BASE + "?=&w=800")
    add("unk-empty-pieces", BASE + "?&&w=800&&&")
    add("unk-plus-name", BASE + "?w+=800", note="name decodes to 'w ' (plus is space): unknown")
    add("unk-space-name", BASE + "?%20w=800")
    add("unk-plus-value", BASE + "?x=a+b&w=800")
    add("unk-dup", BASE + "?x=1&x=2&w=800")
    add("unk-semicolon", BASE + "?w=800;h=600", note="';' is not a separator: w's value is '800;h=600'")
    add("unk-encoded-amp", BASE + "?x=1%26w%3D5&w=800", note="%26 does not split pieces")
    add("name-encoded-w", BASE + "?%77=800", note="names are decoded before matching: %77 is w")
    add("name-encoded-fmt", BASE + "?%66mt=webp")
    add("name-encoded-dup", BASE + "?w=800&%77=640", note="decoded-name duplicate")
    add("name-encoded-bad-value", BASE + "?%77=0")
    add("plus-space-fmt", BASE + "?fmt=webp+", note="'+' is a space in the query")

    # ---------------------------------------------------------- precedence
    group("error precedence: URL_TOO_LONG, INVALID_PATH, then parameters in order, then signature")
    add("prec-path-over-param", img(ident="nope") + "?w=0&fmt=BMP")
    add("prec-param-first-bad", BASE + "?w=0&fmt=BMP")
    add("prec-bad-after-good", BASE + "?w=800&h=600&q=101")
    add("prec-bad-known-after-unknown-bad", BASE + "?x=%zz&w=%zz")
    add("prec-path-over-sig", img(filename="..") + "?w=800", settings=SIGNED)
    add("prec-param-over-sig", BASE + "?w=0", settings=SIGNED,
        note="a bad parameter is reported before the missing signature")
    add("prec-param-over-valid-sig", signed(BASE, "w=0"), settings=SIGNED)
    add("prec-len-over-sig", pad_base + "x" * (8193 - len(pad_base)), settings=SIGNED)

    # ---------------------------------------------------------- signatures
    group("signatures (secret set): HMAC-SHA256 over raw path + '?' + sorted raw pieces except sig")
    add("sig-valid-w", signed(BASE, "w=800"), settings=SIGNED)
    add("sig-valid-first", signed(BASE, "w=800&h=600", pos=0), settings=SIGNED)
    add("sig-valid-middle", signed(BASE, "w=800&h=600&fmt=webp", pos=1), settings=SIGNED)
    add("sig-valid-no-params", signed(BASE, ""), settings=SIGNED,
        note="payload is the path and '?' alone")
    add("sig-valid-auto", signed(BASE, "w=640&q=80"), CHROME, SIGNED)
    add("sig-valid-all", signed(BASE, "w=640&h=480&fit=cover&fmt=avif&q=75&dpr=2"),
        settings=SIGNED)
    s = sign(BASE, "w=800&h=600&fmt=webp")
    add("sig-shuffled", BASE + "?fmt=webp&sig=%s&h=600&w=800" % s, settings=SIGNED,
        note="signed as w,h,fmt; sent as fmt,sig,h,w: the payload is sorted")
    add("sig-shuffled-2", BASE + "?h=600&w=800&fmt=webp&sig=" + s, settings=SIGNED)
    add("sig-unknown-included", signed(BASE, "w=800&utm_source=notion&ref=x"), settings=SIGNED,
        note="unknown parameters are signed too, though not in the key")
    s = sign(BASE, "w=800")
    add("sig-unknown-added", BASE + "?w=800&utm_source=notion&sig=" + s, settings=SIGNED)
    s = sign(BASE, "w=800&utm=1")
    add("sig-unknown-removed", BASE + "?w=800&sig=" + s, settings=SIGNED)
    add("sig-unknown-bad-escape", signed(BASE, "w=800&x=%zz"), settings=SIGNED)
    add("sig-sort-name-then-value", signed(BASE, "a-b=1&a=2&w=800"), settings=SIGNED,
        note="sorted by (name, value): a=2 before a-b=1, though 'a-b=1' < 'a=2' as whole strings")
    add("sig-sort-dup-values", signed(BASE, "x=2&x=1&w=800"), settings=SIGNED)
    add("sig-sort-empty-name", signed(BASE, "=z&w=800"), settings=SIGNED)
    s = sign(BASE, "w=800&flag")
    add("sig-flag-as-signed", BASE + "?w=800&flag&sig=" + s, settings=SIGNED)
    add("sig-flag-vs-equals", BASE + "?w=800&flag=&sig=" + s, settings=SIGNED,
        note="'flag' and 'flag=' are the same payload piece")
    s = sign(BASE, "w=800")
    add("sig-empty-pieces", BASE + "?&w=800&&sig=%s&" % s, settings=SIGNED,
        note="empty pieces are skipped in the payload too")
    s = sign(BASE, "w=%38%30%30")
    add("sig-raw-escaped", BASE + "?w=%38%30%30&sig=" + s, settings=SIGNED)
    add("sig-raw-vs-decoded", BASE + "?w=800&sig=" + s, settings=SIGNED,
        note="the raw bytes are signed: %38%30%30 and 800 differ")
    s = sign(BASE, "x=a+b&w=800")
    add("sig-plus-raw", BASE + "?x=a+b&w=800&sig=" + s, settings=SIGNED)
    add("sig-plus-vs-space", BASE + "?x=a%20b&w=800&sig=" + s, settings=SIGNED)
    upper = img(ws=WS.upper(), ident=ID.upper())
    add("sig-path-raw-valid", signed(upper, "w=800"), settings=SIGNED,
        note="signed over the raw (upper-case, dashed) path; key canonical")
    add("sig-path-canonical-mismatch", upper + "?w=800&sig=" + sign(img(WSX, IDX), "w=800"),
        settings=SIGNED, note="a sig for the canonical path does not cover another spelling")
    uni = img(filename="caf%C3%A9.jpg")
    add("sig-path-escaped-valid", signed(uni, "w=800"), settings=SIGNED)
    add("sig-path-escape-case", uni.replace("%C3%A9", "%c3%a9") + "?w=800&sig=" + sign(uni, "w=800"),
        settings=SIGNED)
    add("sig-missing", BASE + "?w=800", settings=SIGNED)
    add("sig-missing-noquery", BASE, settings=SIGNED)
    good = sign(BASE, "w=800")
    b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    tail = b64.index(good[-1])
    assert len(good) == 43 and tail % 4 == 0  # 32 bytes: the last char carries 4 bits
    add("sig-wrong-last-char", BASE + "?w=800&sig=" + good[:-1] + b64[(tail + 16) % 64],
        settings=SIGNED)
    add("sig-noncanonical-tail", BASE + "?w=800&sig=" + good[:-1] + b64[tail + 1],
        settings=SIGNED, note="same MAC bytes when decoded leniently, but not the canonical "
        "text: compare the base64url text (or decode strictly)")
    add("sig-wrong-truncated", BASE + "?w=800&sig=" + good[:-1], settings=SIGNED)
    add("sig-wrong-padded", BASE + "?w=800&sig=" + good + "=", settings=SIGNED,
        note="base64url WITHOUT padding: a padded sig is wrong")
    add("sig-wrong-extended", BASE + "?w=800&sig=" + good + "A", settings=SIGNED)
    add("sig-wrong-swapcase", BASE + "?w=800&sig=" + good.swapcase(), settings=SIGNED)
    add("sig-wrong-secret", BASE + "?w=800&sig=" + sign(BASE, "w=800", "other-secret"),
        settings=SIGNED)
    add("sig-wrong-params", BASE + "?w=800&sig=" + sign(BASE, "w=640"), settings=SIGNED)
    add("sig-wrong-path", img(filename="other.jpg") + "?w=800&sig=" + good, settings=SIGNED)
    add("sig-wrong-garbage", BASE + "?w=800&sig=nope", settings=SIGNED)
    add("sig-other-secret-valid", signed(BASE, "w=800", "other-secret"),
        settings="secret=other-secret")
    add("sig-empty", BASE + "?w=800&sig=", settings=SIGNED, note="empty known parameter")
    add("sig-no-equals", BASE + "?w=800&sig", settings=SIGNED)
    add("sig-twice", BASE + "?w=800&sig=%s&sig=%s" % (good, good), settings=SIGNED)
    add("sig-bad-escape", BASE + "?w=800&sig=%zz", settings=SIGNED)
    add("sig-encoded-name", BASE + "?w=800&%73ig=" + good, settings=SIGNED,
        note="raw name is %73ig, so the piece is part of the payload: cannot verify")
    add("sig-upper-name", BASE + "?w=800&SIG=" + good, settings=SIGNED,
        note="SIG is an unknown parameter (signed like any other); sig is missing")
    add("sig-with-settings", signed(BASE, "w=150&q=65"), CHROME,
        "widths=100,200,300;quality=50,80;" + SIGNED)
    add("sig-ignored-no-secret", BASE + "?w=800&sig=anything")
    add("sig-ignored-no-secret-valid", signed(BASE, "w=800"))
    add("sig-empty-no-secret", BASE + "?w=800&sig=", note="still an empty known parameter")
    add("sig-bad-escape-no-secret", BASE + "?w=800&sig=%zz")
    add("sig-twice-no-secret", BASE + "?sig=a&sig=b")
    return out


# ---------------------------------------------------------------- self-checks of the model

def self_check():
    """Hand-computed expectations: guard the model against its own slips."""
    assert pct_decode(b"a%2Fb+c", False) == b"a/b+c"
    assert pct_decode(b"a+c", True) == b"a c"
    for bad in (b"%", b"%4", b"%zz", b"a%4g", b"%%41"):
        assert pct_decode(bad, False) is None, bad
    assert pct_encode("café ~.jpg".encode()) == "caf%C3%A9%20~.jpg"
    assert parse_uint(b"000000000000800", 1, 8192) == 800
    assert parse_uint(b"100000", 1, 10 ** 9) is None
    assert parse_dpr(b"1.5") == 15 and parse_dpr(b"4.0") == 40 and parse_dpr(b"4.1") is None
    assert parse_dpr(b"1.25") is None and parse_dpr(b".5") is None and parse_dpr(b"2.") is None
    assert parse_qvalue("0.5") == 500 and parse_qvalue("1.000") == 1000
    assert parse_qvalue("1.001") is None and parse_qvalue("0.1234") is None
    assert nearest_step(80, [60, 75, 85, 95]) == 85 and nearest_step(67, [60, 75, 85, 95]) == 60
    assert snap_up(801, DEFAULT_WIDTHS) == 828 and snap_up(9999, DEFAULT_WIDTHS) == 3840
    d = parse_settings("-")
    k, _ = normalise({"w": 700, "h": 500}, d, "")
    # 500/700 = 0.714 lies between 3:2 (0.667) and 4:3 (0.75); 0.714^2 = 0.510 >= 0.667*0.75 = 0.5
    assert k == {"w": 750, "h": 563, "fmt": "original"}, k   # 750*3/4 = 562.5 -> 563
    k, _ = normalise({"w": 3, "h": 1}, d, "")
    assert k["w"] == 32 and k["h"] == 11, k                   # exactly 3:1; 32/3 = 10.67 -> 11
    k, _ = normalise({"w": 8192, "h": 1}, d, "")
    assert k["h"] == 960, k                                   # below 4:1 stays 4:1: 3840/4
    assert snap_aspect(Fraction(894, 1000)) == Fraction(4, 5)
    assert snap_aspect(Fraction(895, 1000)) == 1
    assert negotiate(CHROME) == "auto-avif" and negotiate("*/*") == "original"
    assert negotiate("image/avif;q=0, image/webp") == "auto-webp"
    # RFC 4231 test case 2, through the same base64url step.
    mac = hmac.new(b"Jefe", b"what do ya want for nothing?", hashlib.sha256).hexdigest()
    assert mac == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert evaluate(BASE + "?w=800", "", "-")[1] == (
        "v1/%s/%s/photo.jpg?fmt=original&w=800" % (WSX, IDX))


# ---------------------------------------------------------------- output

def render():
    lines = [HEADER,
             "# Generated by tests/vectors/gen_vectors.py (an independent Python model of the",
             "# cache-key rules). Do not edit by hand: change the generator and rerun it.",
             "# Fields are literal: never trimmed, no escapes. See tests/vectors/README.md."]
    names = set()
    count = 0
    for name, target, accept, settings, note in cases():
        if name == "#":
            lines.append("#")
            lines.append("# == " + target)
            continue
        assert name not in names, "duplicate case name " + name
        assert not name.startswith("#")
        names.add(name)
        assert all(0x21 <= ord(c) <= 0x7E for c in target), (name, target)
        assert all(0x20 <= ord(c) <= 0x7E for c in accept), (name, accept)
        status, result, sha, vary = evaluate(target, accept, settings)
        if note:
            lines.append("# " + name + ": " + note)
        lines.append("\t".join([name, target, accept, settings, status, result, sha, vary]))
        count += 1
    return "\n".join(lines) + "\n", count


def main(argv):
    self_check()
    text, count = render()
    here = os.path.dirname(os.path.abspath(__file__))
    out_path = os.path.join(here, "cache_keys.tsv")
    if "--stdout" in argv:
        sys.stdout.write(text)
        return 0
    if "--check" in argv:
        try:
            with open(out_path, "rb") as f:
                current = f.read().decode("utf-8")
        except OSError as e:
            print("check: cannot read %s: %s" % (out_path, e), file=sys.stderr)
            return 1
        if current == text:
            print("check: %s is current (%d cases)" % (out_path, count))
            return 0
        old, new = current.splitlines(), text.splitlines()
        for i in range(max(len(old), len(new))):
            a = old[i] if i < len(old) else "<missing>"
            b = new[i] if i < len(new) else "<missing>"
            if a != b:
                print("check: %s is stale (rerun gen_vectors.py); first difference at line %d:"
                      % (out_path, i + 1), file=sys.stderr)
                fa, fb = a.split("\t"), b.split("\t")
                for j in range(max(len(fa), len(fb))):
                    x = fa[j] if j < len(fa) else "<none>"
                    y = fb[j] if j < len(fb) else "<none>"
                    if x != y:
                        print("  field %d\n    file: %s\n    want: %s" % (j + 1, x[:300], y[:300]),
                              file=sys.stderr)
                break
        return 1
    with open(out_path, "wb") as f:
        f.write(text.encode("utf-8"))
    print("wrote %s (%d cases)" % (out_path, count))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
