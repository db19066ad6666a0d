"""The base of every event payload: frozen, strict about unknown fields only on input we own."""

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """An immutable contract model; unknown fields from newer producers are ignored, not rejected."""

    model_config = ConfigDict(frozen=True, extra="ignore")
