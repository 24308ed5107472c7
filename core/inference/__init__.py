"""Inference: predictors (trained runs or pretrained models), media decoding, explanations, evaluation.

    from core.inference import load_run_predictor, open_image
    predictor = load_run_predictor(run_id, "best")
    predictor.top_k(open_image(data, "photo.jpg"), k=5)   # [("cat", 0.91), ...]

Uploads are untrusted: images are opened with limits (media.py), videos are decoded in a child
process with a time limit (video.py). Never imports streamlit.
"""

from core.inference.evaluation import EvalReport, evaluate_run, per_class_scores, val_images
from core.inference.gradcam import find_target_layer, grad_cam, jet, overlay
from core.inference.media import (
    MAX_UPLOAD_BYTES,
    MAX_ZIP_BYTES,
    MAX_ZIP_UNCOMPRESSED_BYTES,
    classify_images,
    images_from_zip,
    open_image,
)
from core.inference.predictor import (
    PRETRAINED_CHOICES,
    Predictor,
    clear_caches,
    list_model_sources,
    load_pretrained_predictor,
    load_run_predictor,
    load_source,
    pretrained_cached,
)
from core.tasks.checkpoints import RunModel, checkpoint_path, load_run_model
from core.inference.video import MAX_VIDEO_BYTES, VIDEO_EXTENSIONS, classify_video, is_video_name, sample_frames

__all__ = [
    "EvalReport", "MAX_UPLOAD_BYTES", "MAX_VIDEO_BYTES", "MAX_ZIP_BYTES", "MAX_ZIP_UNCOMPRESSED_BYTES",
    "PRETRAINED_CHOICES", "Predictor", "VIDEO_EXTENSIONS", "checkpoint_path", "classify_images", "classify_video",
    "clear_caches", "evaluate_run", "find_target_layer", "grad_cam", "images_from_zip", "is_video_name", "jet",
    "list_model_sources", "load_pretrained_predictor", "load_run_predictor", "load_source", "open_image",
    "overlay", "per_class_scores", "RunModel", "load_run_model", "pretrained_cached", "sample_frames", "val_images",
]
