"""Register a trained adapter as a model version in the mlflow model registry, eval numbers as tags.

The registry is where a user compares adapters across runs ("which version of rlmath-adapter was
best on GSM8K?"), so each version carries its held-out numbers as tags and points at the adapter
files the run already logged: the final adapter's mlflow 3 logged model (``models:/<model_id>``, see
``Tracker.log_adapter_model``), or the run artifact ``runs:/<run_id>/adapter`` when there is none.
Nothing is copied or merged.
"""

from __future__ import annotations

import json
import math

from rlmath.tracking import Tracker


def eval_tags(metrics: dict[str, float], prefix: str = "eval.") -> dict[str, str]:
    """Finite metrics as short string tags (registry tags are strings; NaN helps nobody).

    >>> eval_tags({"eval/after/accuracy": 0.25, "x": float("nan")})
    {'eval.eval/after/accuracy': '0.25'}
    """
    return {f"{prefix}{key}": f"{value:.4g}" for key, value in metrics.items()
            if isinstance(value, (int, float)) and math.isfinite(value)}


def register_adapter(tracker: Tracker, metrics: dict[str, float], *, artifact_path: str = "adapter",
                     description: str | None = None, model_id: str | None = None):
    """Create (if needed) the registered model ``tracking.registered_model_name`` and add a version.

    Returns the ``ModelVersion``, or ``None`` when mlflow or registration is switched off. Call it
    after the final adapter was logged as a logged model (pass its ``model_id``) or as the run's
    ``artifact_path`` artifact.
    """
    name = tracker.config.tracking.registered_model_name
    if not tracker.run_id or not name:
        return None
    from mlflow.exceptions import MlflowException

    client = tracker.client
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="LoRA adapters trained by rlmath (base model in the "
                                                         "'base_model' tag of each version).")
    tags = {"base_model": tracker.config.model.name_or_path, "algorithm": tracker.config.algorithm,
            "run_dir": str(tracker.run_dir.resolve()), **eval_tags(metrics)}
    source = f"models:/{model_id}" if model_id else f"runs:/{tracker.run_id}/{artifact_path}"
    version = client.create_model_version(name, source=source, run_id=tracker.run_id, tags=tags,
                                          description=description, model_id=model_id)
    if model_id:
        link_version_to_model(client, model_id, name, version.version)
    tracker.set_tags({"rlmath.registered_model": f"{name}/{version.version}"})
    return version


def link_version_to_model(client, model_id: str, name: str, version: str) -> None:
    """Tag the logged model with its registered versions, as ``mlflow.register_model`` does.

    The UI's "Logged models" table reads the ``mlflow.modelVersions`` tag for its "Registered models"
    column; an mlflow server sets it itself, a local store only when the client does.
    """
    from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

    entry = {"name": name, "version": str(version)}
    current = json.loads(client.get_logged_model(model_id).tags.get(MLFLOW_MODEL_VERSIONS) or "[]")
    if entry not in current:
        client.set_logged_model_tags(model_id, {MLFLOW_MODEL_VERSIONS: json.dumps(current + [entry])})
