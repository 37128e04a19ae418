"""All tables; importing this module registers every table on ``SQLModel.metadata``."""

from app.db.models.aggregation import AggregatedLabel, AggregationRun, WorkerQuality
from app.db.models.assignment import Answer, Assignment, AssignmentStatus, AssignmentTask
from app.db.models.ban import Ban, BanScope
from app.db.models.captcha import CaptchaChallenge
from app.db.models.collection import Collection, CollectionItem
from app.db.models.job import Job, JobStatus
from app.db.models.ledger import (
    AccountBalance,
    LedgerAccount,
    LedgerEntry,
    LedgerKind,
    UserBonus,
)
from app.db.models.media import MediaFile
from app.db.models.ml import ModelStatus, TrainedModel
from app.db.models.pool import Pool, PoolStatus
from app.db.models.project import AnswerOption, Project, ProjectStatus
from app.db.models.quality import RuleHistoryReset, Skill, UserSkill
from app.db.models.task import Task, TaskKind, TaskSuite
from app.db.models.upload import UploadRow
from app.db.models.user import ApiToken, Role, User, WebSession
from app.db.models.webhook import WebhookDelivery, WebhookSubscription

__all__ = [
    "AccountBalance",
    "AggregatedLabel",
    "AggregationRun",
    "Answer",
    "AnswerOption",
    "ApiToken",
    "Assignment",
    "AssignmentStatus",
    "AssignmentTask",
    "Ban",
    "BanScope",
    "CaptchaChallenge",
    "Collection",
    "CollectionItem",
    "Job",
    "JobStatus",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerKind",
    "MediaFile",
    "ModelStatus",
    "Pool",
    "PoolStatus",
    "Project",
    "ProjectStatus",
    "Role",
    "RuleHistoryReset",
    "Skill",
    "Task",
    "TaskKind",
    "TaskSuite",
    "TrainedModel",
    "UploadRow",
    "User",
    "UserBonus",
    "UserSkill",
    "WebSession",
    "WebhookDelivery",
    "WebhookSubscription",
    "WorkerQuality",
]
