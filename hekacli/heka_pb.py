"""Heka's message.proto as protobuf-package classes, built at import time (no protoc needed).

The reference codec for tests and `bench/framing.py`: every field is optional (Go never enforces
"required") and string fields are declared ``bytes`` so non-UTF-8 content parses, exactly what a
Python port must do (spec §1.4). The wire format is identical to Heka's .proto.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto


def _build() -> descriptor_pool.DescriptorPool:
    fdp = descriptor_pb2.FileDescriptorProto(name="hekacli_message.proto", package="hekacli_message",
                                             syntax="proto2")
    field = fdp.message_type.add(name="Field")
    for num, name, ftype, repeated, packed in (
        (1, "name", _F.TYPE_BYTES, False, False),
        (2, "value_type", _F.TYPE_INT32, False, False),
        (3, "representation", _F.TYPE_BYTES, False, False),
        (4, "value_string", _F.TYPE_BYTES, True, False),
        (5, "value_bytes", _F.TYPE_BYTES, True, False),
        (6, "value_integer", _F.TYPE_INT64, True, True),
        (7, "value_double", _F.TYPE_DOUBLE, True, True),
        (8, "value_bool", _F.TYPE_BOOL, True, True),
    ):
        f = field.field.add(name=name, number=num, type=ftype,
                            label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
        if packed:
            f.options.packed = True
    msg = fdp.message_type.add(name="Message")
    for num, name, ftype in (
        (1, "uuid", _F.TYPE_BYTES), (2, "timestamp", _F.TYPE_INT64), (3, "type", _F.TYPE_BYTES),
        (4, "logger", _F.TYPE_BYTES), (5, "severity", _F.TYPE_INT32), (6, "payload", _F.TYPE_BYTES),
        (7, "env_version", _F.TYPE_BYTES), (8, "pid", _F.TYPE_INT32), (9, "hostname", _F.TYPE_BYTES),
    ):
        msg.field.add(name=name, number=num, type=ftype, label=_F.LABEL_OPTIONAL)
    msg.field.add(name="fields", number=10, type=_F.TYPE_MESSAGE, label=_F.LABEL_REPEATED,
                  type_name=".hekacli_message.Field")
    header = fdp.message_type.add(name="Header")
    for num, name, ftype in (
        (1, "message_length", _F.TYPE_UINT32), (3, "hmac_hash_function", _F.TYPE_INT32),
        (4, "hmac_signer", _F.TYPE_BYTES), (5, "hmac_key_version", _F.TYPE_UINT32),
        (6, "hmac", _F.TYPE_BYTES),
    ):
        header.field.add(name=name, number=num, type=ftype, label=_F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return pool


_POOL = _build()
PBMessage = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("hekacli_message.Message"))
PBField = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("hekacli_message.Field"))
PBHeader = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("hekacli_message.Header"))
