"""The models feature.

What other features, the entry points and the console may use; everything else in this package is
its own business (``lint-imports`` holds the line).
"""

from __future__ import annotations

from backend.models.adapters.mlflow_registry import MlflowRegistry, open_mlflow_registry
from backend.models.adapters.sagemaker_control import sagemaker_control_clients
from backend.models.adapters.sagemaker_runtime import SageMakerModelServer
from backend.models.artifacts import HOLDOUT, RegistryError, read_checksums, read_verified
from backend.models.canary import CanaryRouter
from backend.models.compiled import compile_estimator
from backend.models.config import DeploySettings, ModelSettings
from backend.models.deploy import SageMakerDeployer
from backend.models.encoder import FeatureEncoder
from backend.models.encoder_values import FALSE_TOKENS, KINDS, TRUE_TOKENS, category_key, infer_kind
from backend.models.evaluation import (
    POLICY_CUTOFF,
    as_groups,
    auc,
    brier,
    calibration_curve,
    evaluate,
    model_metrics,
)
from backend.models.gates import GateConfig, fairness_gates
from backend.models.halts import HALT_ACTION, DeploymentsHalted, active_halts
from backend.models.health import model_health
from backend.models.lifecycle import REFUSALS, ModelAdmin
from backend.models.package import SERVING_JSON, PackageError, read_package
from backend.models.provider import ModelProvider, ModelUnavailable, ServingModel
from backend.models.queries import unresolved_alerts
from backend.models.registry import PD_FLOOR, PromotionRefused, Registry, apply_calibration
from backend.models.signing import ModelKeys, SignatureError, keys_from_environment, model_keys
from backend.models.states import ROLLED_BACK, LifecycleRefused, canary_candidates, canary_default
from backend.models.states import label as version_label

__all__ = [
    "active_halts",
    "apply_calibration",
    "as_groups",
    "auc",
    "brier",
    "calibration_curve",
    "canary_candidates",
    "canary_default",
    "CanaryRouter",
    "category_key",
    "compile_estimator",
    "DeploymentsHalted",
    "DeploySettings",
    "evaluate",
    "fairness_gates",
    "FALSE_TOKENS",
    "FeatureEncoder",
    "GateConfig",
    "HALT_ACTION",
    "HOLDOUT",
    "infer_kind",
    "KINDS",
    "LifecycleRefused",
    "MlflowRegistry",
    "model_health",
    "model_keys",
    "model_metrics",
    "ModelKeys",
    "ModelAdmin",
    "ModelProvider",
    "ModelSettings",
    "ModelUnavailable",
    "open_mlflow_registry",
    "PackageError",
    "PD_FLOOR",
    "POLICY_CUTOFF",
    "PromotionRefused",
    "read_checksums",
    "read_package",
    "read_verified",
    "REFUSALS",
    "Registry",
    "RegistryError",
    "ROLLED_BACK",
    "sagemaker_control_clients",
    "SageMakerDeployer",
    "SageMakerModelServer",
    "SERVING_JSON",
    "TRUE_TOKENS",
    "ServingModel",
    "SignatureError",
    "keys_from_environment",
    "unresolved_alerts",
    "version_label",
]
