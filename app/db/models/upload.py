"""Staging rows of a large upload: checked and written in short batches, then moved into
``task`` (see ``app.services.projects.upload_batches``), so a bad upload leaves nothing in
the pool. A row with ``seq`` 0 marks an upload whose checked rows are moving in."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Index, String
from sqlmodel import Field, SQLModel


class UploadRow(SQLModel, table=True):
    """One checked task row of an upload in progress; ``upload_key`` names the upload
    (its job's folder), ``seq`` orders the rows, ``row`` is the line in the file."""

    __tablename__ = "upload_row"
    __table_args__ = (
        Index("ix_upload_row_key_seq", "upload_key", "seq"),
        Index("ix_upload_row_key_image", "upload_key", "image"),
    )

    id: int | None = Field(default=None, primary_key=True)
    upload_key: str = Field(sa_column=Column(String(64), nullable=False))
    seq: int
    row: int
    kind: str = Field(max_length=16)
    image: str = Field(max_length=2000)
    input_values: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    media_id: int | None = Field(default=None)
    known_answer: str | None = Field(default=None, max_length=200)
    hint: str | None = Field(default=None, max_length=2000)
    overlap: int | None = Field(default=None)
