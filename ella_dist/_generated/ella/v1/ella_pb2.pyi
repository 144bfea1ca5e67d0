from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Output(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTPUT_UNSPECIFIED: _ClassVar[Output]
    OUTPUT_SCORES: _ClassVar[Output]
    OUTPUT_LABELS: _ClassVar[Output]
    OUTPUT_PROBABILITIES: _ClassVar[Output]
OUTPUT_UNSPECIFIED: Output
OUTPUT_SCORES: Output
OUTPUT_LABELS: Output
OUTPUT_PROBABILITIES: Output

class Matrix(_message.Message):
    __slots__ = ("values", "shape")
    VALUES_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    shape: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, values: _Optional[_Iterable[float]] = ..., shape: _Optional[_Iterable[int]] = ...) -> None: ...

class ModelConfig(_message.Message):
    __slots__ = ("loss", "k", "mu", "lam", "ridge", "fit_intercept", "init", "seed", "l_solver")
    LOSS_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    MU_FIELD_NUMBER: _ClassVar[int]
    LAM_FIELD_NUMBER: _ClassVar[int]
    RIDGE_FIELD_NUMBER: _ClassVar[int]
    FIT_INTERCEPT_FIELD_NUMBER: _ClassVar[int]
    INIT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    L_SOLVER_FIELD_NUMBER: _ClassVar[int]
    loss: str
    k: int
    mu: float
    lam: float
    ridge: float
    fit_intercept: bool
    init: str
    seed: int
    l_solver: str
    def __init__(self, loss: _Optional[str] = ..., k: _Optional[int] = ..., mu: _Optional[float] = ..., lam: _Optional[float] = ..., ridge: _Optional[float] = ..., fit_intercept: _Optional[bool] = ..., init: _Optional[str] = ..., seed: _Optional[int] = ..., l_solver: _Optional[str] = ...) -> None: ...

class CreateModelRequest(_message.Message):
    __slots__ = ("name", "config")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    name: str
    config: ModelConfig
    def __init__(self, name: _Optional[str] = ..., config: _Optional[_Union[ModelConfig, _Mapping]] = ...) -> None: ...

class CreateModelResponse(_message.Message):
    __slots__ = ("name", "config")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    name: str
    config: ModelConfig
    def __init__(self, name: _Optional[str] = ..., config: _Optional[_Union[ModelConfig, _Mapping]] = ...) -> None: ...

class DeleteModelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteModelResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("names",)
    NAMES_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, names: _Optional[_Iterable[str]] = ...) -> None: ...

class GetConfigRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetConfigResponse(_message.Message):
    __slots__ = ("name", "config")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    name: str
    config: ModelConfig
    def __init__(self, name: _Optional[str] = ..., config: _Optional[_Union[ModelConfig, _Mapping]] = ...) -> None: ...

class TrainChunk(_message.Message):
    __slots__ = ("model", "task_id", "n_features", "x", "y", "end_of_task", "submission_id")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    N_FEATURES_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    END_OF_TASK_FIELD_NUMBER: _ClassVar[int]
    SUBMISSION_ID_FIELD_NUMBER: _ClassVar[int]
    model: str
    task_id: str
    n_features: int
    x: _containers.RepeatedScalarFieldContainer[float]
    y: _containers.RepeatedScalarFieldContainer[float]
    end_of_task: bool
    submission_id: str
    def __init__(self, model: _Optional[str] = ..., task_id: _Optional[str] = ..., n_features: _Optional[int] = ..., x: _Optional[_Iterable[float]] = ..., y: _Optional[_Iterable[float]] = ..., end_of_task: _Optional[bool] = ..., submission_id: _Optional[str] = ...) -> None: ...

class TaskAck(_message.Message):
    __slots__ = ("task_id", "n_rows", "version", "n_tasks", "submission_id")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    N_ROWS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    N_TASKS_FIELD_NUMBER: _ClassVar[int]
    SUBMISSION_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    n_rows: int
    version: int
    n_tasks: int
    submission_id: str
    def __init__(self, task_id: _Optional[str] = ..., n_rows: _Optional[int] = ..., version: _Optional[int] = ..., n_tasks: _Optional[int] = ..., submission_id: _Optional[str] = ...) -> None: ...

class TrainResponse(_message.Message):
    __slots__ = ("acks", "version", "n_tasks")
    ACKS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    N_TASKS_FIELD_NUMBER: _ClassVar[int]
    acks: _containers.RepeatedCompositeFieldContainer[TaskAck]
    version: int
    n_tasks: int
    def __init__(self, acks: _Optional[_Iterable[_Union[TaskAck, _Mapping]]] = ..., version: _Optional[int] = ..., n_tasks: _Optional[int] = ...) -> None: ...

class PredictRequest(_message.Message):
    __slots__ = ("model", "task_id", "x", "outputs", "rows_per_chunk")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    ROWS_PER_CHUNK_FIELD_NUMBER: _ClassVar[int]
    model: str
    task_id: str
    x: Matrix
    outputs: _containers.RepeatedScalarFieldContainer[Output]
    rows_per_chunk: int
    def __init__(self, model: _Optional[str] = ..., task_id: _Optional[str] = ..., x: _Optional[_Union[Matrix, _Mapping]] = ..., outputs: _Optional[_Iterable[_Union[Output, str]]] = ..., rows_per_chunk: _Optional[int] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("row_offset", "scores", "labels", "probabilities")
    ROW_OFFSET_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    row_offset: int
    scores: _containers.RepeatedScalarFieldContainer[float]
    labels: _containers.RepeatedScalarFieldContainer[float]
    probabilities: Matrix
    def __init__(self, row_offset: _Optional[int] = ..., scores: _Optional[_Iterable[float]] = ..., labels: _Optional[_Iterable[float]] = ..., probabilities: _Optional[_Union[Matrix, _Mapping]] = ...) -> None: ...

class GetTaskModelRequest(_message.Message):
    __slots__ = ("model", "task_id")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    model: str
    task_id: str
    def __init__(self, model: _Optional[str] = ..., task_id: _Optional[str] = ...) -> None: ...

class GetTaskModelResponse(_message.Message):
    __slots__ = ("task_id", "theta", "s", "n", "theta_single", "hessian")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    THETA_FIELD_NUMBER: _ClassVar[int]
    S_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    THETA_SINGLE_FIELD_NUMBER: _ClassVar[int]
    HESSIAN_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    theta: _containers.RepeatedScalarFieldContainer[float]
    s: _containers.RepeatedScalarFieldContainer[float]
    n: int
    theta_single: _containers.RepeatedScalarFieldContainer[float]
    hessian: Matrix
    def __init__(self, task_id: _Optional[str] = ..., theta: _Optional[_Iterable[float]] = ..., s: _Optional[_Iterable[float]] = ..., n: _Optional[int] = ..., theta_single: _Optional[_Iterable[float]] = ..., hessian: _Optional[_Union[Matrix, _Mapping]] = ...) -> None: ...

class GetBasisRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class GetBasisResponse(_message.Message):
    __slots__ = ("basis", "version", "n_tasks")
    BASIS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    N_TASKS_FIELD_NUMBER: _ClassVar[int]
    basis: Matrix
    version: int
    n_tasks: int
    def __init__(self, basis: _Optional[_Union[Matrix, _Mapping]] = ..., version: _Optional[int] = ..., n_tasks: _Optional[int] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("task_ids",)
    TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    task_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, task_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SaveRequest(_message.Message):
    __slots__ = ("model", "id")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    model: str
    id: str
    def __init__(self, model: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class SaveResponse(_message.Message):
    __slots__ = ("model", "id", "version")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    model: str
    id: str
    version: int
    def __init__(self, model: _Optional[str] = ..., id: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class LoadRequest(_message.Message):
    __slots__ = ("model", "id")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    model: str
    id: str
    def __init__(self, model: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class LoadResponse(_message.Message):
    __slots__ = ("model", "id", "version", "n_tasks")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    N_TASKS_FIELD_NUMBER: _ClassVar[int]
    model: str
    id: str
    version: int
    n_tasks: int
    def __init__(self, model: _Optional[str] = ..., id: _Optional[str] = ..., version: _Optional[int] = ..., n_tasks: _Optional[int] = ...) -> None: ...

class ClearRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class ClearResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NodeStatus(_message.Message):
    __slots__ = ("fields",)
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    fields: _containers.ScalarMap[str, str]
    def __init__(self, fields: _Optional[_Mapping[str, str]] = ...) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("nodes",)
    class NodesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: NodeStatus
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[NodeStatus, _Mapping]] = ...) -> None: ...
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.MessageMap[str, NodeStatus]
    def __init__(self, nodes: _Optional[_Mapping[str, NodeStatus]] = ...) -> None: ...
