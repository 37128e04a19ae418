"""Project payloads in Toloka's shape (``public_name``, ``task_spec``, ...)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AnswerOptionBody(BaseModel):
    """A Crowdlab answer option: ``label`` shown, ``value`` written to results."""

    label: str = ""
    value: str


class ProjectBody(BaseModel):
    """``POST /projects`` and ``PUT /projects/{id}``; unknown and read-only keys are ignored.

    Answer options come from ``answer_options`` when given, otherwise from the task spec's
    Template Builder radio/button group or the output spec's ``allowed_values``.
    """

    model_config = ConfigDict(extra="allow")

    public_name: str = Field(default="", max_length=200)
    public_description: str = ""
    public_instructions: str = ""
    private_comment: str = ""
    question: str | None = None
    task_spec: dict[str, Any] | None = None
    answer_options: list[AnswerOptionBody] | None = None
    # Crowdlab: "single" (one answer) or "multiple" (several answers, Toloka's checkbox
    # output: ``result`` a list of values); None: read from the task spec's output type
    answer_type: str | None = None
    allow_none: bool | None = None
