"""The base of every `certmon.yaml` section model."""

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Config sections reject unknown keys, so a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
