"""A long list of config entries kept compact: validated once, stored as JSON in one buffer, rebuilt on access.

Why not a list of models: a pydantic model costs a kilobyte or more of small objects, so `certmon.yaml`'s
100,000 targets would keep every service 150-200 MB larger for a list it reads once, at start, to build the
indexes it needs. Kept as one `bytes` buffer and an array of offsets, the same list takes a few megabytes, and
no small object of it outlives the load: what the YAML parser and the validation allocated on the way is
returned to the system instead of staying pinned around survivors. Reading an entry validates its JSON again
(from trusted, already-validated input), which is why callers index a config once rather than scanning it per
message.

`CompactModels[M]` validates from any list of `M` inputs (errors keep their `targets.3.host` locations), accepts
another `CompactModels`, compares equal to a sequence with the same entries, and serializes as the list of
models, so `model_dump` and `exclude_defaults`/`exclude_unset` work as on a list.
"""

from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import accumulate
from typing import Any, Generic, TypeVar, get_args, overload

from pydantic import BaseModel, GetCoreSchemaHandler, ValidationError
from pydantic_core import core_schema

M = TypeVar("M", bound=BaseModel)


class CompactModels(Sequence[M], Generic[M]):
    """An immutable sequence of `model` instances stored as their JSON (only the fields that were set)."""

    __slots__ = ("_buffer", "_ends", "_model")

    def __init__(self, model: type[M], entries: Iterable[M] = ()) -> None:
        documents = [entry.model_dump_json(exclude_unset=True).encode() for entry in entries]
        self._model = model
        self._buffer = b"".join(documents)
        self._ends = array("Q", accumulate(len(document) for document in documents))

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, index: int) -> M: ...

    @overload
    def __getitem__(self, index: slice) -> list[M]: ...

    def __getitem__(self, index: int | slice) -> M | list[M]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("entry index out of range")
        start = self._ends[index - 1] if index else 0
        return self._model.model_validate_json(self._buffer[start : self._ends[index]])

    def __iter__(self) -> Iterator[M]:
        start = 0
        for end in self._ends:
            yield self._model.model_validate_json(self._buffer[start:end])
            start = end

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CompactModels) and self._buffer == other._buffer and self._ends == other._ends:
            return self._model is other._model
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return len(self) == len(other) and all(mine == theirs for mine, theirs in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-looking sequences are unhashable, like the list it replaces

    def __repr__(self) -> str:
        return f"CompactModels[{self._model.__name__}]({len(self)} entries)"

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        (model,) = get_args(source)
        as_list = handler.generate_schema(list[model])  # type: ignore[valid-type]  # the model is only known here

        def validate(value: Any, validate_list: core_schema.ValidatorFunctionWrapHandler) -> "CompactModels[Any]":
            if isinstance(value, cls):
                return value
            if isinstance(value, list):
                # One entry at a time, each stored before the next is validated: the list validated whole would hold
                # every model at once (about 100 MB for 100,000 targets) on top of the parsed document.
                try:
                    return cls(model, (model.model_validate(entry) for entry in value))
                except ValidationError:
                    pass  # validated whole below, for errors located as `targets.3.host`
            return cls(model, validate_list(value))

        return core_schema.no_info_wrap_validator_function(
            validate,
            as_list,
            serialization=core_schema.plain_serializer_function_ser_schema(list, return_schema=as_list),
        )
