"""CloudWatch in the emulator: the AWS SDKs call CloudWatch with the Smithy RPC v2 CBOR protocol
(the service model's first protocol: botocore's cloudwatch service-2.json lists
["smithy-rpc-v2-cbor", "json", "query"]); moto 5.2.5 answers only query and JSON. This translates
each CBOR request into the same operation in JSON (awsJson1_0: the same data model, another
encoding) and moto's JSON answer back into CBOR.

The protocol (https://smithy.io/2.0/additional-specs/protocols/smithy-rpc-v2.html): POST
/service/{ServiceName}/operation/{OperationName}, header `smithy-protocol: rpc-v2-cbor`, body and
answer a CBOR map (RFC 8949); timestamps are tag 1 (epoch seconds); an error's map carries
`__type` and `message`, with the HTTP status.
"""

import io
import json
import re
import struct

OPERATION_PATH = re.compile(r"^/service/(?P<service>[A-Za-z0-9]+)/operation/(?P<operation>[A-Za-z0-9]+)$")


# -- CBOR (RFC 8949): what the SDK sends and expects; indefinite lengths accepted on decode


class _Reader:
    def __init__(self, data):
        self.data, self.at = data, 0

    def take(self, n):
        chunk = self.data[self.at:self.at + n]
        if len(chunk) < n:
            raise ValueError("truncated CBOR")
        self.at += n
        return chunk

    def argument(self, info):
        if info < 24:
            return info
        size = {24: 1, 25: 2, 26: 4, 27: 8}.get(info)
        if size is None:
            raise ValueError(f"bad CBOR additional info {info}")
        return int.from_bytes(self.take(size), "big")


_BREAK = object()


def _decode(reader):
    head = reader.take(1)[0]
    major, info = head >> 5, head & 0x1F
    if major == 7:
        if info == 20:
            return False
        if info == 21:
            return True
        if info in (22, 23):
            return None
        if info == 25:
            return struct.unpack(">e", reader.take(2))[0]
        if info == 26:
            return struct.unpack(">f", reader.take(4))[0]
        if info == 27:
            return struct.unpack(">d", reader.take(8))[0]
        if info == 31:
            return _BREAK
        raise ValueError(f"unsupported CBOR simple value {info}")
    if info == 31 and major in (2, 3, 4, 5):
        items = []
        while True:
            item = _decode(reader)
            if item is _BREAK:
                break
            items.append(item)
        if major == 2:
            return b"".join(items)
        if major == 3:
            return "".join(items)
        if major == 4:
            return items
        return dict(zip(items[::2], items[1::2]))
    value = reader.argument(info)
    if major == 0:
        return value
    if major == 1:
        return -1 - value
    if major == 2:
        return bytes(reader.take(value))
    if major == 3:
        return reader.take(value).decode("utf-8")
    if major == 4:
        return [_decode(reader) for _ in range(value)]
    if major == 5:
        result = {}
        for _ in range(value):
            key = _decode(reader)
            result[key] = _decode(reader)
        return result
    if major == 6:
        return _decode(reader)  # tag 1 (a timestamp): its epoch seconds serve as JSON's
    raise ValueError(f"unsupported CBOR major type {major}")


def decode(data):
    return _decode(_Reader(data)) if data else {}


def _head(out, major, value):
    if value < 24:
        out.write(bytes([major << 5 | value]))
    elif value < 1 << 8:
        out.write(bytes([major << 5 | 24, value]))
    elif value < 1 << 16:
        out.write(bytes([major << 5 | 25]) + value.to_bytes(2, "big"))
    elif value < 1 << 32:
        out.write(bytes([major << 5 | 26]) + value.to_bytes(4, "big"))
    else:
        out.write(bytes([major << 5 | 27]) + value.to_bytes(8, "big"))


class Timestamp(float):
    """Epoch seconds to be written as CBOR tag 1."""


def _encode(out, value):
    if value is None:
        out.write(b"\xf6")
    elif value is True:
        out.write(b"\xf5")
    elif value is False:
        out.write(b"\xf4")
    elif isinstance(value, Timestamp):
        _head(out, 6, 1)
        out.write(b"\xfb" + struct.pack(">d", float(value)))
    elif isinstance(value, int):
        if value >= 0:
            _head(out, 0, value)
        else:
            _head(out, 1, -1 - value)
    elif isinstance(value, float):
        out.write(b"\xfb" + struct.pack(">d", value))
    elif isinstance(value, bytes):
        _head(out, 2, len(value))
        out.write(value)
    elif isinstance(value, str):
        data = value.encode("utf-8")
        _head(out, 3, len(data))
        out.write(data)
    elif isinstance(value, (list, tuple)):
        _head(out, 4, len(value))
        for item in value:
            _encode(out, item)
    elif isinstance(value, dict):
        _head(out, 5, len(value))
        for key, item in value.items():
            _encode(out, key)
            _encode(out, item)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as CBOR")


def encode(value):
    out = io.BytesIO()
    _encode(out, value)
    return out.getvalue()


# -- the answer's timestamps, found through the operation's output shape


def _timestamps(value, shape):
    """`value` (moto's JSON answer) with its timestamp members marked as such."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return {k: _timestamps(v, shape.members.get(k)) for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [_timestamps(v, shape.member) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: _timestamps(v, shape.value) for k, v in value.items()}
    if kind == "timestamp":
        if isinstance(value, (int, float)):
            return Timestamp(value)
        from dateutil import parser as date_parser

        return Timestamp(date_parser.isoparse(str(value)).timestamp())
    return value


def _output_shape(operation):
    from botocore.session import get_session

    model = get_session().get_service_model("cloudwatch")
    return model.operation_model(operation).output_shape


def install():
    """Puts the translation in front of moto's server (after clock.py's own wrapper)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original_call = DomainDispatcherApplication.__call__

    def __call__(self, environ, start_response):
        match = OPERATION_PATH.match(environ.get("PATH_INFO") or "")
        if environ.get("HTTP_SMITHY_PROTOCOL") != "rpc-v2-cbor" or match is None:
            return original_call(self, environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = decode(environ["wsgi.input"].read(length))
        body = json.dumps(request).encode("utf-8")
        environ = dict(environ)
        environ.update({
            "PATH_INFO": "/",
            "CONTENT_TYPE": "application/x-amz-json-1.0",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_X_AMZ_TARGET": f"{match['service']}.{match['operation']}",
            "wsgi.input": io.BytesIO(body),
        })
        environ.pop("HTTP_SMITHY_PROTOCOL", None)
        answered = {}

        def capture(status, headers, exc_info=None):
            answered["status"], answered["headers"] = status, headers
            return lambda chunk: None

        chunks = original_call(self, environ, capture)
        try:
            text = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        answer = json.loads(text) if text.strip() else {}
        if answered["status"].startswith("2"):
            answer = _timestamps(answer, _output_shape(match["operation"]))
        elif isinstance(answer, dict) and "__type" not in answer:
            answer["__type"] = answer.get("Code") or answer.get("code") or "InternalFailure"
        data = encode(answer)
        headers = [(k, v) for k, v in answered["headers"] if k.lower() not in ("content-type", "content-length")]
        headers += [("Content-Type", "application/cbor"), ("Content-Length", str(len(data))),
                    ("smithy-protocol", "rpc-v2-cbor")]
        start_response(answered["status"], headers)
        return [data]

    DomainDispatcherApplication.__call__ = __call__
