from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InvokeRequest(_message.Message):
    __slots__ = ("plugin", "endpoint", "payload", "payload_json", "return_exceptions")
    PLUGIN_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    RETURN_EXCEPTIONS_FIELD_NUMBER: _ClassVar[int]
    plugin: str
    endpoint: str
    payload: _struct_pb2.Value
    payload_json: str
    return_exceptions: bool
    def __init__(self, plugin: _Optional[str] = ..., endpoint: _Optional[str] = ..., payload: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., payload_json: _Optional[str] = ..., return_exceptions: _Optional[bool] = ...) -> None: ...

class InvokeResponse(_message.Message):
    __slots__ = ("result", "result_json", "error_json", "meta")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    ERROR_JSON_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    result: _struct_pb2.Value
    result_json: str
    error_json: str
    meta: _struct_pb2.Struct
    def __init__(self, result: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., result_json: _Optional[str] = ..., error_json: _Optional[str] = ..., meta: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ListPluginsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPluginsResponse(_message.Message):
    __slots__ = ("plugins",)
    PLUGINS_FIELD_NUMBER: _ClassVar[int]
    plugins: _containers.RepeatedCompositeFieldContainer[PluginInfo]
    def __init__(self, plugins: _Optional[_Iterable[_Union[PluginInfo, _Mapping]]] = ...) -> None: ...

class PluginInfo(_message.Message):
    __slots__ = ("name", "version", "interfaces", "input_schema", "output_schema")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    INTERFACES_FIELD_NUMBER: _ClassVar[int]
    INPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    interfaces: _containers.RepeatedCompositeFieldContainer[Interface]
    input_schema: _struct_pb2.Value
    output_schema: _struct_pb2.Value
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., interfaces: _Optional[_Iterable[_Union[Interface, _Mapping]]] = ..., input_schema: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., output_schema: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class Interface(_message.Message):
    __slots__ = ("type", "protocol", "endpoints", "served_over")
    class EndpointsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    SERVED_OVER_FIELD_NUMBER: _ClassVar[int]
    type: str
    protocol: str
    endpoints: _containers.ScalarMap[str, str]
    served_over: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, type: _Optional[str] = ..., protocol: _Optional[str] = ..., endpoints: _Optional[_Mapping[str, str]] = ..., served_over: _Optional[_Iterable[str]] = ...) -> None: ...
