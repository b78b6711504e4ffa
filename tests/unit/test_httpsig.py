"""HTTP message signatures (RFC 9421) and structured fields (RFC 8941), as AudioHook uses them."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from live.errors import LiveError, TooManyRequests
from live.ingest import httpsig
from live.ingest.httpsig import (
    InnerList,
    Item,
    NonceCache,
    RequestParts,
    SignatureError,
    SignatureInput,
    Token,
    parse_dictionary,
    parse_signature_headers,
    serialize_inner_list,
    signature_base,
    verify,
)

# --- RFC 8941 ---------------------------------------------------------------------------------


def test_dictionary_of_items_inner_lists_and_parameters() -> None:
    parsed = parse_dictionary('a=?0, b, c; foo=bar, d=("x" "y");n=1, e=:AQID:, f=-12, g=tok/en*, h="q\\"s\\\\"')
    assert parsed["a"] == Item(False)
    assert parsed["b"] == Item(True)
    assert parsed["c"] == Item(True, {"foo": Token("bar")})
    assert parsed["d"] == InnerList((Item("x"), Item("y")), {"n": 1})
    assert parsed["e"] == Item(b"\x01\x02\x03")
    assert parsed["f"] == Item(-12)
    assert parsed["g"] == Item(Token("tok/en*")) and isinstance(parsed["g"].value, Token)  # type: ignore[union-attr]
    assert parsed["h"] == Item('q"s\\')


@pytest.mark.parametrize(
    "text",
    [
        "a=", "a=(", 'a="unterminated', "a=1,", "a=1 b=2", "A=1", "a=?2", 'a="\\x"', "a=1234567890123456",
        "a=1.2345", "a=:not base64!:", "a=\"tab\there\"", "a=(1 2", "a=(1,2)", ";a", "a=é",
    ],
)
def test_malformed_fields_are_refused(text: str) -> None:
    with pytest.raises(httpsig.StructuredFieldError):
        parse_dictionary(text)


def test_inner_list_round_trips() -> None:
    text = '("@request-target" "x-api-key");keyid="k";nonce="n";alg="hmac-sha256";created=1;expires=31'
    parsed = parse_dictionary(f"sig1={text}")["sig1"]
    assert isinstance(parsed, InnerList)
    assert serialize_inner_list(parsed) == text


@given(st.text(max_size=200))
def test_any_text_parses_or_raises_a_signature_error(text: str) -> None:
    try:
        parse_dictionary(text)
    except SignatureError:
        pass


strings = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)
keys = st.from_regex(r"[a-z*][a-z0-9_\-.*]{0,8}", fullmatch=True)
bare = st.one_of(st.integers(-10**14, 10**14), strings, st.binary(max_size=20), st.booleans())


@given(st.lists(st.tuples(bare, st.dictionaries(keys, bare, max_size=3)), max_size=5), st.dictionaries(keys, bare, max_size=4))
def test_serialised_inner_lists_parse_back(items: list[tuple[object, dict[str, object]]], params: dict[str, object]) -> None:
    inner = InnerList(tuple(Item(v, p) for v, p in items), params)  # type: ignore[arg-type]
    text = serialize_inner_list(inner)
    assert parse_dictionary(f"x={text}")["x"] == inner


# --- RFC 9421 ---------------------------------------------------------------------------------


def test_rfc9421_hmac_example_b_2_5() -> None:
    """RFC 9421 Appendix B.2.5: signing a request using hmac-sha256 (known answer)."""
    key = base64.b64decode(
        "uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ=="
    )
    sig, mac = parse_signature_headers(
        'sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"',
        "sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:",
    )
    request = RequestParts(
        "POST",
        "example.com",
        "/foo?param=Value&Pet=dog",
        {"date": "Tue, 20 Apr 2021 02:07:55 GMT", "content-type": "application/json"},
    )
    base = signature_base(sig, request)
    assert base == (
        b'"date": Tue, 20 Apr 2021 02:07:55 GMT\n'
        b'"@authority": example.com\n'
        b'"content-type": application/json\n'
        b'"@signature-params": ("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"'
    )
    assert hmac.compare_digest(hmac.new(key, base, hashlib.sha256).digest(), mac)


SECRET = b"client secret bytes"
FIELDS = {
    "audiohook-organization-id": "d7934305-0972-4844-938e-9060eef73d05",
    "audiohook-session-id": "e160e428-53e2-487c-977d-96989bf5c99d",
    "audiohook-correlation-id": "30b0e395-84d3-4570-ac13-9a62d8f514c0",
    "x-api-key": "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh",
}
REQUEST = RequestParts("GET", "audiohook.example.com", "/ingest/audiohook?x=1", FIELDS)
COMPONENTS = '("@request-target" "@authority" "audiohook-organization-id" "audiohook-session-id" "audiohook-correlation-id" "x-api-key")'
NOW = 1_700_000_000


def signed(params: str = "", components: str = COMPONENTS, secret: bytes = SECRET, request: RequestParts = REQUEST) -> tuple[SignatureInput, bytes]:
    params = params or f';keyid="{FIELDS["x-api-key"]}";nonce="VGhpcyBpcyBhIHVuaXF1ZSBub25jZQ";alg="hmac-sha256";created={NOW};expires={NOW + 30}'
    sig_input = f"sig1={components}{params}"
    sig, _ = parse_signature_headers(sig_input, "sig1=:AA==:")
    mac = hmac.new(secret, signature_base(sig, request), hashlib.sha256).digest()
    return parse_signature_headers(sig_input, f"sig1=:{base64.b64encode(mac).decode()}:")


def check(sig: SignatureInput, mac: bytes, *, now: float = NOW + 1, request: RequestParts = REQUEST) -> httpsig.Verified:
    return verify(sig, mac, request, secret=SECRET, api_key=FIELDS["x-api-key"], now=now)


def test_genesys_signature_base() -> None:
    sig, _ = signed()
    assert signature_base(sig, REQUEST).decode().splitlines() == [
        '"@request-target": /ingest/audiohook?x=1',
        '"@authority": audiohook.example.com',
        '"audiohook-organization-id": d7934305-0972-4844-938e-9060eef73d05',
        '"audiohook-session-id": e160e428-53e2-487c-977d-96989bf5c99d',
        '"audiohook-correlation-id": 30b0e395-84d3-4570-ac13-9a62d8f514c0',
        '"x-api-key": SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh',
        f'"@signature-params": {COMPONENTS};keyid="SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh";'
        f'nonce="VGhpcyBpcyBhIHVuaXF1ZSBub25jZQ";alg="hmac-sha256";created={NOW};expires={NOW + 30}',
    ]


def test_a_good_signature_verifies() -> None:
    verified = check(*signed())
    assert verified.nonce == "VGhpcyBpcyBhIHVuaXF1ZSBub25jZQ"
    assert verified.valid_until == NOW + 30 + httpsig.MAX_CLOCK_SKEW_S


def test_the_default_port_is_not_part_of_the_authority() -> None:
    on_443 = RequestParts("GET", "AudioHook.Example.com:443", REQUEST.target, FIELDS)
    check(*signed(), request=on_443)


def test_within_the_clock_skew_is_accepted() -> None:
    check(*signed(), now=NOW - httpsig.MAX_CLOCK_SKEW_S)
    check(*signed(), now=NOW + 30 + httpsig.MAX_CLOCK_SKEW_S)


@pytest.mark.parametrize(
    ("params", "now", "words"),
    [
        (f';keyid="{FIELDS["x-api-key"]}";nonce="VGhpcyBpcyBhIHVuaXF1ZSBub25jZQ";created={NOW};expires={NOW + 30}', NOW + 31 + httpsig.MAX_CLOCK_SKEW_S, "expired"),
        (f';keyid="{FIELDS["x-api-key"]}";nonce="VGhpcyBpcyBhIHVuaXF1ZSBub25jZQ";created={NOW + 60}', NOW, "future"),
        (f';keyid="{FIELDS["x-api-key"]}";nonce="VGhpcyBpcyBhIHVuaXF1ZSBub25jZQ";created={NOW}', NOW + 100, "expired"),  # too old
        (f';keyid="{FIELDS["x-api-key"]}";nonce="VGhpcyBpcyBhIHVuaXF1ZSBub25jZQ";created={NOW};expires={NOW - 1}', NOW, "before"),
        (f';keyid="{FIELDS["x-api-key"]}";nonce="VGhpcyBpcyBhIHVuaXF1ZSBub25jZQ"', NOW, "created"),
        (f';keyid="{FIELDS["x-api-key"]}";created={NOW}', NOW, "nonce"),
        (f';keyid="{FIELDS["x-api-key"]}";nonce="short";created={NOW}', NOW, "nonce"),
        (f';keyid="someone-else";nonce="VGhpcyBpcyBhIHVuaXF1ZSBub25jZQ";created={NOW}', NOW, "keyid"),
        (f';nonce="VGhpcyBpcyBhIHVuaXF1ZSBub25jZQ";created={NOW}', NOW, "keyid"),
        (f';keyid="{FIELDS["x-api-key"]}";nonce="VGhpcyBpcyBhIHVuaXF1ZSBub25jZQ";created={NOW};alg="rsa-pss-sha512"', NOW, "algorithm"),
        (f';keyid="{FIELDS["x-api-key"]}";nonce="VGhpcyBpcyBhIHVuaXF1ZSBub25jZQ";created="{NOW}"', NOW, "integer"),
        (f';keyid="{FIELDS["x-api-key"]}";nonce="VGhpcyBpcyBhIHVuaXF1ZSBub25jZQ";created={NOW};extra=1', NOW, "unknown"),
    ],
)
def test_bad_parameters_are_refused(params: str, now: int, words: str) -> None:
    with pytest.raises(SignatureError, match=words):
        check(*signed(params), now=now)


def test_every_required_component_must_be_covered() -> None:
    for missing in httpsig.REQUIRED_COMPONENTS:
        components = "(" + " ".join(f'"{c}"' for c in httpsig.REQUIRED_COMPONENTS if c != missing) + ")"
        with pytest.raises(SignatureError, match="does not cover"):
            check(*signed(components=components))


def test_a_wrong_secret_or_a_changed_header_does_not_match() -> None:
    with pytest.raises(SignatureError, match="does not match"):
        check(*signed(secret=b"another secret"))
    changed = RequestParts("GET", REQUEST.authority, REQUEST.target, {**FIELDS, "audiohook-session-id": "x"})
    with pytest.raises(SignatureError, match="does not match"):
        check(*signed(), request=changed)
    elsewhere = RequestParts("GET", "evil.example.com", REQUEST.target, FIELDS)
    with pytest.raises(SignatureError, match="does not match"):
        check(*signed(), request=elsewhere)


@pytest.mark.parametrize(
    ("components", "words"),
    [
        (COMPONENTS[:-1] + ' "x-api-key")', "twice"),
        (COMPONENTS[:-1] + ' "@signature-params")', "not supported"),
        (COMPONENTS[:-1] + ' "x-missing")', "not in the request"),
        (COMPONENTS[:-1] + ' "X-Upper")', "cannot be covered"),
        (COMPONENTS[:-1] + ' "x-api-key";sf)', "parameters"),
        (COMPONENTS[:-1] + " token)", "strings"),
    ],
)
def test_bad_components_are_refused(components: str, words: str) -> None:
    with pytest.raises(SignatureError, match=words):
        sig, _ = parse_signature_headers(f"sig1={components};created=1", "sig1=:AA==:")
        signature_base(sig, REQUEST)


@pytest.mark.parametrize(
    ("signature_input", "signature", "words"),
    [
        (f"a={COMPONENTS}, b={COMPONENTS}", "a=:AA==:, b=:AA==:", "exactly one"),
        (f"a={COMPONENTS}", "b=:AA==:", "label"),
        ('a="not a list"', "a=:AA==:", "inner list"),
        (f"a={COMPONENTS}", 'a="text"', "byte sequence"),
        (f"a={COMPONENTS}", "a=:AA==:;p=1", "byte sequence"),
    ],
)
def test_bad_headers_are_refused(signature_input: str, signature: str, words: str) -> None:
    with pytest.raises(SignatureError, match=words):
        parse_signature_headers(signature_input, signature)


@given(st.text(max_size=300), st.text(max_size=100))
def test_any_header_values_raise_only_signature_errors(signature_input: str, signature: str) -> None:
    try:
        sig, mac = parse_signature_headers(signature_input, signature)
        verify(sig, mac, REQUEST, secret=SECRET, api_key=FIELDS["x-api-key"], now=NOW)
    except LiveError:
        pass


@given(st.sampled_from(list(COMPONENTS)), st.integers(0, len(COMPONENTS) - 1))
def test_mutated_signature_inputs_never_verify(char: str, position: int) -> None:
    sig, mac = signed()
    text = f"sig1={serialize_inner_list(sig.covered)}"
    mutated = text[:position] + char + text[position + 1 :]
    if mutated == text:
        return
    with pytest.raises(LiveError):
        parsed, _ = parse_signature_headers(mutated, f"sig1=:{base64.b64encode(mac).decode()}:")
        verify(parsed, mac, REQUEST, secret=SECRET, api_key=FIELDS["x-api-key"], now=NOW + 1)


# --- nonces -----------------------------------------------------------------------------------


def test_a_nonce_is_used_once_while_valid() -> None:
    cache = NonceCache()
    cache.use("key", "n1", until=100.0, now=10.0)
    with pytest.raises(SignatureError, match="already used"):
        cache.use("key", "n1", until=100.0, now=20.0)
    cache.use("other-key", "n1", until=100.0, now=20.0)  # scoped by key
    cache.use("key", "n1", until=200.0, now=101.0)  # expired entries are forgotten
    assert len(cache) == 1  # both earlier entries had expired


def test_the_cache_is_bounded_and_refuses_rather_than_forgets() -> None:
    cache = NonceCache(max_entries=3)
    for i in range(3):
        cache.use("k", f"n{i}", until=100.0, now=1.0)
    with pytest.raises(TooManyRequests):
        cache.use("k", "n3", until=100.0, now=2.0)
    cache.use("k", "n3", until=300.0, now=150.0)  # once they expire there is room
    assert len(cache) == 1
